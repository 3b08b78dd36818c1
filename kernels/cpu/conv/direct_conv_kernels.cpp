// Direct convolution for inputs with few channels (the 3x3/2, 3 -> 32 stem of
// MobileNetV2), compiled once per ISA. With Cin = 3 an im2col/GEMM would copy
// 27-wide rows to run a K = 27 product; here every input value is broadcast
// once and multiplied into register accumulators spanning the output
// channels.
//
// One output row reads kernel_h input rows. Copying them, zero-padded on
// both sides (and all zeros for rows outside the input), into a small
// buffer makes every pixel of the row an interior pixel: the whole row runs
// in blocks of 8 pixels (4 on AVX2; the last block overlapping the one
// before it when the width is not a multiple of the block), without
// clipped-window loops, which had cost the stem a fifth of its time on a few
// border pixels. The copy is 1-2% of the row's work and is where the input
// is read from memory, so the next row's input rows are prefetched while
// this row computes. The weight gradient reads the same padded rows.
#include <algorithm>
#include <vector>

#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/conv/conv_simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {

extern const PointwiseKernels pointwise_table;  // pointwise_kernels.cpp, same instruction set

namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);

inline V clamp6(V v) { return vmin(vmax(v, vbroadcast(0.0f)), vbroadcast(6.0f)); }

// ---- forward ----

// Pixels per block: 8 x 2 output vectors are 16 accumulators of AVX-512's 32
// registers; AVX2's 16 take 4 x 2.
constexpr int kBlockPixels = L >= 16 ? 8 : 4;

// NP pixels from output column ox, NV output vectors from co, reading the
// padded rows (row ky at rows + ky * row_floats). RUN = kernel_w * Cin and
// STEP = stride * Cin when fixed at compile time (9 and 6: the 3x3/2 RGB
// stem, fully unrolled with constant offsets; a run-time step made GCC keep
// the eight pixel addresses on the stack), else 0.
template <int NP, int NV, int RUN, int STEP>
void padded_block(const float* rows, std::int64_t row_floats, const float* w, const float* bias, float* out_row,
                  const ConvGeometry& g, std::int64_t ox, std::int64_t co, bool relu6) {
  const std::int64_t run = RUN > 0 ? RUN : g.kernel_w * g.in_c;
  const std::int64_t cout = g.out_c, step = STEP > 0 ? STEP : g.stride_w * g.in_c;
  V acc[NP][NV];
  for (int j = 0; j < NV; ++j) {
    const V b = bias ? vload(bias + co + j * L) : vbroadcast(0.0f);
    for (int p = 0; p < NP; ++p) acc[p][j] = b;
  }
  const float* xr = rows + ox * step;
  const float* wr = w + co;
  for (std::int64_t ky = 0; ky < g.kernel_h; ++ky, xr += row_floats, wr += run * cout) {
#pragma GCC unroll 64
    for (std::int64_t t = 0; t < run; ++t) {
      V wv[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) wv[j] = vload(wr + t * cout + j * L);
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const V xb = vbroadcast(xr[p * step + t]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[p][j] = vfma(xb, wv[j], acc[p][j]);
      }
    }
  }
  for (int p = 0; p < NP; ++p)
    for (int j = 0; j < NV; ++j) {
      float* o = out_row + (ox + p) * cout + co + j * L;
      const V v = relu6 ? clamp6(acc[p][j]) : acc[p][j];
      if (g.stream_output) {
        vstream(o, v);
      } else {
        vstore(o, v);
      }
    }
}

// Output channels [co_begin, out_c) of one pixel from the padded rows, one
// at a time (the channels past the last whole vector).
void padded_pixel_tail(const float* rows, std::int64_t row_floats, const float* w, const float* bias, float* out,
                       const ConvGeometry& g, std::int64_t ox, std::int64_t co_begin, bool relu6) {
  const std::int64_t run = g.kernel_w * g.in_c, cout = g.out_c, step = g.stride_w * g.in_c;
  for (std::int64_t co = co_begin; co < cout; ++co) {
    float a = bias ? bias[co] : 0.0f;
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
      const float* xr = rows + ky * row_floats + ox * step;
      const float* wr = w + ky * run * cout + co;
      for (std::int64_t t = 0; t < run; ++t) a += xr[t] * wr[t * cout];
    }
    out[co] = relu6 ? std::min(std::max(a, 0.0f), 6.0f) : a;
  }
}

// NP pixels from column ox, every output channel: groups of 2 vectors, then
// 1, then single channels.
template <int NP, int RUN, int STEP>
void padded_pixels(const float* rows, std::int64_t row_floats, const float* w, const float* bias, float* out_row,
                   const ConvGeometry& g, std::int64_t ox, bool relu6) {
  const std::int64_t cout = g.out_c, cout_vec = cout / L * L;
  std::int64_t co = 0;
  for (; co + 2 * L <= cout_vec; co += 2 * L)
    padded_block<NP, 2, RUN, STEP>(rows, row_floats, w, bias, out_row, g, ox, co, relu6);
  for (; co + L <= cout_vec; co += L) padded_block<NP, 1, RUN, STEP>(rows, row_floats, w, bias, out_row, g, ox, co, relu6);
  if (co < cout)
    for (int p = 0; p < NP; ++p)
      padded_pixel_tail(rows, row_floats, w, bias, out_row + (ox + p) * cout, g, ox + p, co, relu6);
}

template <int RUN, int STEP>
void padded_row_blocks(const float* rows, std::int64_t row_floats, const float* w, const float* bias, float* out_row,
                       const ConvGeometry& g, bool relu6, const char* prefetch, std::int64_t prefetch_bytes) {
  if (g.out_w < kBlockPixels) {  // narrower than one block: pixel by pixel
    for (std::int64_t ox = 0; ox < g.out_w; ++ox)
      padded_pixels<1, RUN, STEP>(rows, row_floats, w, bias, out_row, g, ox, relu6);
    return;
  }
  const std::int64_t blocks = (g.out_w + kBlockPixels - 1) / kBlockPixels;
  const std::int64_t lines_per_block = (prefetch_bytes / 64 + blocks - 1) / blocks;
  for (std::int64_t b = 0; b < blocks; ++b) {
    for (std::int64_t i = 0; i < lines_per_block && prefetch_bytes > 0; ++i, prefetch += 64, prefetch_bytes -= 64)
      __builtin_prefetch(prefetch, 0, 3);
    // The last block ends at the row's end, overlapping the one before it
    // (those pixels are computed twice, to the same values).
    const std::int64_t ox = std::min(b * kBlockPixels, g.out_w - kBlockPixels);
    padded_pixels<kBlockPixels, RUN, STEP>(rows, row_floats, w, bias, out_row, g, ox, relu6);
  }
}

// Width in floats of one padded row, and of the buffer for kernel_h of them
// (slack past the last row: an overlapping block reads no further than the
// padded width, but keep the buffer a whole number of vectors).
std::int64_t padded_row_floats(const ConvGeometry& g) {
  return ((g.out_w - 1) * g.stride_w + g.kernel_w) * g.in_c;
}
std::int64_t padded_rows_floats(const ConvGeometry& g) { return g.kernel_h * padded_row_floats(g) + L; }

// The kernel_h input rows under output row r (row = n * out_h + oy), zero-
// padded on both sides, or all zeros outside the input, into rows.
void copy_padded_rows(const float* x, const ConvGeometry& g, std::int64_t r, float* rows) {
  const std::int64_t cin = g.in_c, in_row = g.in_w * cin, row_floats = padded_row_floats(g);
  const std::int64_t copy_lo = g.pad_left, copy_n = std::min(g.in_w, row_floats / cin - g.pad_left);
  const std::int64_t n = r / g.out_h, oy = r % g.out_h;
  const float* x_img = x + n * g.in_h * in_row;
  const std::int64_t iy0 = oy * g.stride_h - g.pad_top;
  for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
    float* dst = rows + ky * row_floats;
    const std::int64_t iy = iy0 + ky;
    if (iy < 0 || iy >= g.in_h) {
      std::fill(dst, dst + row_floats, 0.0f);
      continue;
    }
    std::fill(dst, dst + copy_lo * cin, 0.0f);
    std::copy(x_img + iy * in_row, x_img + iy * in_row + copy_n * cin, dst + copy_lo * cin);
    std::fill(dst + (copy_lo + copy_n) * cin, dst + row_floats, 0.0f);
  }
}

void forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
             std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t cin = g.in_c, in_row = g.in_w * cin;
  const std::int64_t row_floats = padded_row_floats(g);
  thread_local std::vector<float> buffer;
  buffer.assign(static_cast<std::size_t>(padded_rows_floats(g)), 0.0f);
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    copy_padded_rows(x, g, r, buffer.data());
    // The next row's input rows (those of this image still ahead).
    const char* prefetch = nullptr;
    std::int64_t prefetch_bytes = 0;
    if (r + 1 < row_end) {
      const std::int64_t n1 = (r + 1) / g.out_h, oy1 = (r + 1) % g.out_h;
      const std::int64_t lo = std::max<std::int64_t>(0, oy1 * g.stride_h - g.pad_top);
      const std::int64_t hi = std::min(g.in_h, oy1 * g.stride_h - g.pad_top + g.kernel_h);
      if (hi > lo) {
        prefetch = reinterpret_cast<const char*>(x + (n1 * g.in_h + lo) * in_row);
        prefetch_bytes = (hi - lo) * in_row * std::int64_t{sizeof(float)};
      }
    }
    float* out_row = y + r * g.out_w * g.out_c;
    const std::int64_t run = g.kernel_w * cin, step = g.stride_w * cin;
    if (run == 9 && step == 6 && g.kernel_h == 3) {
      padded_row_blocks<9, 6>(buffer.data(), row_floats, w, bias, out_row, g, relu6, prefetch, prefetch_bytes);
    } else if (run == 9 && step == 3 && g.kernel_h == 3) {
      padded_row_blocks<9, 3>(buffer.data(), row_floats, w, bias, out_row, g, relu6, prefetch, prefetch_bytes);
    } else {
      padded_row_blocks<0, 0>(buffer.data(), row_floats, w, bias, out_row, g, relu6, prefetch, prefetch_bytes);
    }
  }
  if (g.stream_output) vstream_fence();
}

// ---- weight gradient ----

// dw[(ky, kx, ci), co] += x window * dy over the output rows: with the input
// rows padded, the window values of kernel row ky for output pixel ox are the
// kernel_w * Cin floats from padded row ky at ox * stride * Cin, i.e. rows of
// a matrix whose rows overlap (row stride stride * Cin): the pointwise
// weight-gradient kernel runs on it in place, one call per kernel row, and
// no im2col buffer is written or read.
void weight_grad(const float* x, const float* dy, float* dw, const ConvGeometry& g, std::int64_t row_begin,
                 std::int64_t row_end) {
  const std::int64_t run = g.kernel_w * g.in_c, step = g.stride_w * g.in_c, cout = g.out_c;
  const std::int64_t row_floats = padded_row_floats(g);
  std::vector<float> rows(static_cast<std::size_t>(padded_rows_floats(g)));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    copy_padded_rows(x, g, r, rows.data());
    const float* dy_row = dy + r * g.out_w * cout;
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
      pointwise_table.weight_grad(rows.data() + ky * row_floats, step, dy_row, cout, g.out_w, run, cout,
                                  dw + ky * run * cout, cout);
  }
}

}  // namespace

extern const DirectConvKernels direct_conv_table;
const DirectConvKernels direct_conv_table{forward, weight_grad};

}  // namespace petal::cpu::PETAL_ISA_NS
