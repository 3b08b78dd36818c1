// Conv2D drivers over sgemm; see gemm_conv.hpp.
#include "kernels/cpu/conv/gemm_conv.hpp"

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv/channel_stats.hpp"
#include "kernels/cpu/conv/conv_parallel.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"

namespace petal::cpu {
namespace {

// About 256 KiB of im2col rows per block: the block and its GEMM output stay in L2.
constexpr std::int64_t kBlockFloats = 64 * 1024;
// Pixels per GEMM call of a 1x1 convolution: the output block stays in L2,
// and 1032 = 86 x 12 = 172 x 6 = 258 x 4 rows leave no ragged register tile
// (1024 left 4 rows, packed and computed as a whole 12-row tile).
constexpr std::int64_t kPointwiseBlockRows = 1032;

bool is_pointwise(const ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
         g.pad_left == 0 && g.out_h == g.in_h && g.out_w == g.in_w;
}

std::int64_t im2col_block_rows(const ConvGeometry& g) {
  const std::int64_t k = g.taps() * g.in_c;
  return std::clamp<std::int64_t>(kBlockFloats / std::max<std::int64_t>(k, 1), 8, 4096);
}

// Output pixel p as (image, row, column), advanced one pixel at a time: the
// divisions per pixel cost more than copying a 3-channel window.
struct PixelCursor {
  std::int64_t n, oy, ox;
  const ConvGeometry* g;
  PixelCursor(const ConvGeometry& geometry, std::int64_t p) : g(&geometry) {
    const std::int64_t plane = geometry.out_h * geometry.out_w;
    n = p / plane, oy = (p % plane) / geometry.out_w, ox = p % geometry.out_w;
  }
  void next() {
    if (++ox < g->out_w) return;
    ox = 0;
    if (++oy < g->out_h) return;
    oy = 0;
    ++n;
  }
};

// Walks the im2col rows [p0, p1) one kernel row at a time: for output pixel
// p and kernel row ky, calls run(offset, image_row, ix0, columns_inside)
// with the offset of its kw * Cin entries in the block, the input row they
// map to (null when ky falls in the padding), the first input column
// ix0 = ox * stride - pad and whether all kw columns lie inside the input.
// In NHWC the kw * Cin inputs under one kernel row are contiguous, so such a
// run is one copy.
template <class T, class Run>
inline void for_each_im2col_run(T* image, const ConvGeometry& g, std::int64_t p0, std::int64_t p1, Run&& run) {
  const std::int64_t cin = g.in_c, row_len = g.kernel_w * cin;
  PixelCursor at(g, p0);
  std::int64_t offset = 0;
  for (std::int64_t p = p0; p < p1; ++p, at.next()) {
    const std::int64_t ix0 = at.ox * g.stride_w - g.pad_left;
    const bool columns_inside = ix0 >= 0 && ix0 + g.kernel_w <= g.in_w;
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky, offset += row_len) {
      const std::int64_t iy = at.oy * g.stride_h - g.pad_top + ky;
      T* image_row = iy < 0 || iy >= g.in_h ? nullptr : image + (at.n * g.in_h + iy) * g.in_w * cin;
      run(offset, image_row, ix0, columns_inside);
    }
  }
}

// Rows [p0, p1) of the im2col matrix [pixels, kh*kw*Cin] (zeros for padding).
void im2col(const float* x, const ConvGeometry& g, std::int64_t p0, std::int64_t p1, float* col) {
  const std::int64_t cin = g.in_c, run = g.kernel_w * cin;
  for_each_im2col_run(x, g, p0, p1, [&](std::int64_t offset, const float* src_row, std::int64_t ix0, bool inside) {
    float* dst = col + offset;
    if (!src_row) {
      std::fill(dst, dst + run, 0.0f);
      return;
    }
    if (inside) {
      const float* src = src_row + ix0 * cin;
      for (std::int64_t i = 0; i < run; ++i) dst[i] = src[i];
      return;
    }
    for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
      const std::int64_t ix = ix0 + kx;
      float* d = dst + kx * cin;
      if (ix < 0 || ix >= g.in_w) {
        std::fill(d, d + cin, 0.0f);
      } else {
        std::copy(src_row + ix * cin, src_row + (ix + 1) * cin, d);
      }
    }
  });
}

// dx += the im2col rows [p0, p1) scattered back to their input pixels.
void col2im_add(const float* col, const ConvGeometry& g, std::int64_t p0, std::int64_t p1, float* dx) {
  const std::int64_t cin = g.in_c, run = g.kernel_w * cin;
  for_each_im2col_run(dx, g, p0, p1, [&](std::int64_t offset, float* dst_row, std::int64_t ix0, bool inside) {
    if (!dst_row) return;
    const float* src = col + offset;
    if (inside) {
      float* d = dst_row + ix0 * cin;
      for (std::int64_t i = 0; i < run; ++i) d[i] += src[i];
      return;
    }
    for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
      const std::int64_t ix = ix0 + kx;
      if (ix < 0 || ix >= g.in_w) continue;
      float* d = dst_row + ix * cin;
      for (std::int64_t c = 0; c < cin; ++c) d[c] += src[kx * cin + c];
    }
  });
}

// Adds the per-chunk partial results in chunk order into out.
void add_partials(const std::vector<std::vector<float>>& partials, float* out, std::int64_t size) {
  std::copy(partials[0].begin(), partials[0].begin() + size, out);
  for (std::size_t c = 1; c < partials.size(); ++c)
    for (std::int64_t i = 0; i < size; ++i) out[i] += partials[c][static_cast<std::size_t>(i)];
}

// dw [k, Cout] += a [rows, k]^T @ dy [rows, Cout]. The kernel vectorises
// over the second operand's columns and broadcasts the first's, so the wider
// of the two goes second: for narrow outputs (Cout < 64 < k) it computes dw^T
// and adds it transposed.
// Rows of a are lda floats apart, rows of dy ldy, rows of dw ldw.
void accumulate_weight_grad(const float* a, std::int64_t lda, const float* dy, std::int64_t ldy, std::int64_t rows,
                            std::int64_t k, std::int64_t cout, float* dw, std::int64_t ldw) {
  if (k <= cout || cout >= 64) {
    pointwise_kernels().weight_grad(a, lda, dy, ldy, rows, k, cout, dw, ldw);
    return;
  }
  std::vector<float> transposed(static_cast<std::size_t>(cout * k), 0.0f);
  pointwise_kernels().weight_grad(dy, ldy, a, lda, rows, cout, k, transposed.data(), k);
  for (std::int64_t i = 0; i < k; ++i)
    for (std::int64_t j = 0; j < cout; ++j) dw[i * ldw + j] += transposed[static_cast<std::size_t>(j * k + i)];
}

void accumulate_weight_grad(const float* a, const float* dy, std::int64_t rows, std::int64_t k, std::int64_t cout,
                            float* dw) {
  accumulate_weight_grad(a, k, dy, cout, rows, k, cout, dw, cout);
}

// Weight gradient of a 1x1 convolution over too few pixels to give every
// thread a block of its own (the 6x6 and 12x12 layers): the threads take
// disjoint ranges of dw instead (groups of 6 input channels, or of 64 output
// channels when those are more), each over all pixels, so there is nothing
// to add up afterwards and the result does not depend on the thread count.
void pointwise_weight_grad_split(const float* x, const float* dy, const ConvGeometry& g, float* dw) {
  const std::int64_t cin = g.in_c, cout = g.out_c, pixels = g.output_pixels();
  std::fill(dw, dw + cin * cout, 0.0f);
  constexpr std::int64_t kRowUnit = 6, kColUnit = 64;
  const std::int64_t row_units = (cin + kRowUnit - 1) / kRowUnit, col_units = (cout + kColUnit - 1) / kColUnit;
  if (row_units >= col_units) {
    parallel_for(0, row_units, 1, [&](std::int64_t u0, std::int64_t u1) {
      const std::int64_t r0 = u0 * kRowUnit, r1 = std::min(cin, u1 * kRowUnit);
      accumulate_weight_grad(x + r0, cin, dy, cout, pixels, r1 - r0, cout, dw + r0 * cout, cout);
    });
  } else {
    parallel_for(0, col_units, 1, [&](std::int64_t u0, std::int64_t u1) {
      const std::int64_t c0 = u0 * kColUnit, c1 = std::min(cout, u1 * kColUnit);
      accumulate_weight_grad(x, cin, dy + c0, cout, pixels, cin, c1 - c0, dw + c0, cout);
    });
  }
}

}  // namespace

void channel_sums(const float* x, std::int64_t rows, std::int64_t channels, float* out) {
  const ChannelKernels& k = channel_kernels();
  const std::int64_t period = channel_period(channels, k.lanes);
  const std::int64_t rows_per_period = period / channels;
  // Float partial sums over short runs, flushed into double per chunk.
  constexpr std::int64_t kRunPeriods = 256;
  const std::int64_t periods = (rows + rows_per_period - 1) / rows_per_period;
  const std::int64_t chunks = chunk_count(periods, 64);
  std::vector<std::vector<double>> partial(static_cast<std::size_t>(chunks), std::vector<double>(static_cast<std::size_t>(channels), 0.0));
  for_each_chunk(periods, chunks, [&](std::int64_t chunk, std::int64_t b, std::int64_t e) {
    std::vector<float> run(static_cast<std::size_t>(period));
    std::vector<double>& acc = partial[static_cast<std::size_t>(chunk)];
    for (std::int64_t s = b; s < e; s += kRunPeriods) {
      const std::int64_t first = s * period, last = std::min(std::min(s + kRunPeriods, e) * period, rows * channels);
      std::fill(run.begin(), run.end(), 0.0f);
      k.sums(x + first, last - first, period, run.data());
      for (std::int64_t i = 0; i < period; ++i) acc[static_cast<std::size_t>(i % channels)] += run[static_cast<std::size_t>(i)];
    }
  });
  for (std::int64_t c = 0; c < channels; ++c) {
    double s = 0.0;
    for (const auto& p : partial) s += p[static_cast<std::size_t>(c)];
    out[c] = static_cast<float>(s);
  }
}

// Output pixel 0 by plain loops (the shift of the batch statistics).
void first_output_pixel(const float* x, const float* w, const float* bias, const ConvGeometry& g, float* out) {
  for (std::int64_t co = 0; co < g.out_c; ++co) out[co] = bias ? bias[co] : 0.0f;
  for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
      const std::int64_t iy = ky - g.pad_top, ix = kx - g.pad_left;
      if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
      for (std::int64_t ci = 0; ci < g.in_c; ++ci) {
        const float v = x[(iy * g.in_w + ix) * g.in_c + ci];
        const float* wr = w + ((ky * g.kernel_w + kx) * g.in_c + ci) * g.out_c;
        for (std::int64_t co = 0; co < g.out_c; ++co) out[co] += v * wr[co];
      }
    }
}

namespace {

// The forward drivers; `epilogue` (applied by sgemm as it stores each tile,
// no second pass over the output) adds bias (and scale) and ReLU6 on the
// GEMM paths, while the direct kernel takes bias and relu6 itself.
void run_conv2d_forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g,
                        bool relu6, ChannelStats* stats, const GemmEpilogue& epilogue) {
  const std::int64_t pixels = g.output_pixels(), cout = g.out_c;
  if (stats != nullptr) {
    std::vector<float> first(static_cast<std::size_t>(cout));
    first_output_pixel(x, w, bias, g, first.data());
    stats->set_shift(first.data());
  }
  // An output nothing touches again here goes past the caches (the epilogue
  // is applied as each tile is stored, before it streams).
  const bool stream = stats == nullptr && pixels * cout * std::int64_t{sizeof(float)} >= kStreamOutputThresholdBytes;
  if (is_pointwise(g)) {
    const std::int64_t chunks = chunk_count(pixels, 256);
    if (stats != nullptr) stats->prepare(chunks);
    for_each_chunk(pixels, chunks, [&](std::int64_t chunk, std::int64_t p0, std::int64_t p1) {
      for (std::int64_t b = p0; b < p1; b += kPointwiseBlockRows) {
        const std::int64_t rows = std::min(kPointwiseBlockRows, p1 - b);
        sgemm_epilogue(false, false, rows, cout, g.in_c, 1.0f, x + b * g.in_c, g.in_c, w, cout, 0.0f, y + b * cout,
                       cout, epilogue, stream);
        if (stats != nullptr) stats->add(chunk, y + b * cout, rows * cout);
      }
    });
    return;
  }
  if (conv2d_runs_direct(g)) {
    const DirectConvKernels& k = direct_conv_kernels();
    const std::int64_t rows = g.batch * g.out_h;
    if (stats == nullptr) {
      // Each output row is computed the same whoever computes it: rows in
      // pieces claimed one at a time (MobileNetV2's stem at batch 1: with
      // the rows cut in two halves, the first thread done waited 10-20 us
      // of 150 for the other).
      ConvGeometry streamed = g;
      streamed.stream_output = pixels * cout * std::int64_t{sizeof(float)} >= kStreamOutputThresholdBytes;
      const std::int64_t piece = std::max<std::int64_t>(1, rows / (8 * chunk_count(rows, 1)));
      parallel_for_pieces(0, rows, piece,
                          [&](std::int64_t r0, std::int64_t r1) { k.forward(x, w, bias, y, streamed, relu6, r0, r1); });
      return;
    }
    const std::int64_t chunks = chunk_count(rows, 1);
    stats->prepare(chunks);
    for_each_chunk(rows, chunks, [&](std::int64_t chunk, std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        k.forward(x, w, bias, y, g, relu6, r, r + 1);
        stats->add(chunk, y + r * g.out_w * cout, g.out_w * cout);
      }
    });
    return;
  }
  const std::int64_t k = g.taps() * g.in_c, block = im2col_block_rows(g);
  const std::int64_t chunks = chunk_count(pixels, block);
  if (stats != nullptr) stats->prepare(chunks);
  for_each_chunk(pixels, chunks, [&](std::int64_t chunk, std::int64_t p0, std::int64_t p1) {
    std::vector<float> col(static_cast<std::size_t>(std::min(block, p1 - p0) * k));
    for (std::int64_t b = p0; b < p1; b += block) {
      const std::int64_t rows = std::min(block, p1 - b);
      im2col(x, g, b, b + rows, col.data());
      sgemm_epilogue(false, false, rows, cout, k, 1.0f, col.data(), k, w, cout, 0.0f, y + b * cout, cout,
                     epilogue, stream);
      if (stats != nullptr) stats->add(chunk, y + b * cout, rows * cout);
    }
  });
}

}  // namespace

bool conv2d_runs_direct(const ConvGeometry& g) { return g.in_c <= 4; }

void conv2d_forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
                    ChannelStats* stats) {
  run_conv2d_forward(x, w, bias, y, g, relu6, stats, GemmEpilogue{nullptr, bias, relu6});
}

void conv2d_forward_scaled(const float* x, const float* w, const float* scale, const float* shift, float* y,
                           const ConvGeometry& g, bool relu6) {
  run_conv2d_forward(x, w, nullptr, y, g, relu6, nullptr, GemmEpilogue{scale, shift, relu6});
}

void conv2d_backward_input(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  const std::int64_t cout = g.out_c;
  if (is_pointwise(g)) {
    // dx [pixels, Cin] = dy [pixels, Cout] @ w^T, w stored [Cin, Cout].
    sgemm(false, true, g.output_pixels(), g.in_c, cout, 1.0f, dy, cout, w, cout, 0.0f, dx, g.in_c);
    return;
  }
  std::fill(dx, dx + g.input_pixels() * g.in_c, 0.0f);
  const std::int64_t k = g.taps() * g.in_c, block = im2col_block_rows(g), plane = g.out_h * g.out_w;
  // Scatter-adds of different images never overlap, so threads take whole images.
  auto run_images = [&](std::int64_t n0, std::int64_t n1) {
    std::vector<float> col(static_cast<std::size_t>(std::min(block, (n1 - n0) * plane) * k));
    for (std::int64_t b = n0 * plane; b < n1 * plane; b += block) {
      const std::int64_t rows = std::min(block, n1 * plane - b);
      sgemm(false, true, rows, k, cout, 1.0f, dy + b * cout, cout, w, cout, 0.0f, col.data(), k);
      col2im_add(col.data(), g, b, b + rows, dx);
    }
  };
  if (g.batch >= 2 && !in_parallel_region() && num_threads() > 1) {
    for_each_chunk(g.batch, chunk_count(g.batch, 1), [&](std::int64_t, std::int64_t n0, std::int64_t n1) {
      run_images(n0, n1);
    });
  } else {
    run_images(0, g.batch);  // sgemm threads itself
  }
}

void conv2d_backward_kernel(const float* dy, const float* x, float* dw, float* dbias, const ConvGeometry& g) {
  const std::int64_t cout = g.out_c, pixels = g.output_pixels();
  const std::int64_t k = g.taps() * g.in_c;
  if (dbias != nullptr) channel_sums(dy, pixels, cout, dbias);
  const std::int64_t block = is_pointwise(g) ? kPointwiseBlockRows * 4 : im2col_block_rows(g);
  const std::int64_t chunks = chunk_count(pixels, std::max<std::int64_t>(block, 256));
  if (is_pointwise(g) && chunks < num_threads() && !in_parallel_region()) {
    pointwise_weight_grad_split(x, dy, g, dw);
    return;
  }
  if (conv2d_runs_direct(g)) {
    // Few input channels (the RGB stem): rows through padded copies, no im2col.
    const std::int64_t rows = g.batch * g.out_h, row_chunks = chunk_count(rows, 4);
    std::vector<std::vector<float>> partials(static_cast<std::size_t>(row_chunks));
    for_each_chunk(rows, row_chunks, [&](std::int64_t chunk, std::int64_t r0, std::int64_t r1) {
      std::vector<float>& acc = partials[static_cast<std::size_t>(chunk)];
      acc.assign(static_cast<std::size_t>(k * cout), 0.0f);
      direct_conv_kernels().weight_grad(x, dy, acc.data(), g, r0, r1);
    });
    add_partials(partials, dw, k * cout);
    return;
  }
  std::vector<std::vector<float>> partials(static_cast<std::size_t>(chunks));
  for_each_chunk(pixels, chunks, [&](std::int64_t chunk, std::int64_t p0, std::int64_t p1) {
    std::vector<float>& acc = partials[static_cast<std::size_t>(chunk)];
    acc.assign(static_cast<std::size_t>(k * cout), 0.0f);
    if (is_pointwise(g)) {
      accumulate_weight_grad(x + p0 * g.in_c, dy + p0 * cout, p1 - p0, g.in_c, cout, acc.data());
      return;
    }
    std::vector<float> col(static_cast<std::size_t>(std::min(block, p1 - p0) * k));
    for (std::int64_t b = p0; b < p1; b += block) {
      const std::int64_t rows = std::min(block, p1 - b);
      im2col(x, g, b, b + rows, col.data());
      accumulate_weight_grad(col.data(), dy + b * cout, rows, k, cout, acc.data());
    }
  });
  add_partials(partials, dw, k * cout);
}

}  // namespace petal::cpu
