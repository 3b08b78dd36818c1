// Pooling kernels (see pool_tables.hpp), compiled once per ISA. Channels are
// the innermost NHWC axis, so each window is a handful of contiguous channel
// vectors; a ragged channel tail (C not a multiple of the vector width) runs
// the same arithmetic one lane at a time. Backward passes gather into input
// rows, so a thread owns every dx element it writes and, within an element,
// contributions arrive in output order (as in the reference scatter).
#include "kernels/cpu/conv/conv_simd.hpp"
#include "kernels/cpu/conv/pool_tables.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);

// In-bounds input positions [begin, end) of the window of output position o
// along one axis.
struct Span {
  std::int64_t begin, end;
  std::int64_t size() const { return end - begin; }
};
inline Span window_span(std::int64_t o, std::int64_t stride, std::int64_t pad, std::int64_t kernel,
                        std::int64_t in) {
  const std::int64_t start = o * stride - pad;
  return {std::max<std::int64_t>(start, 0), std::min<std::int64_t>(start + kernel, in)};
}
// Output positions [begin, end) whose windows cover input position i.
inline Span covering_outputs(std::int64_t i, std::int64_t stride, std::int64_t pad, std::int64_t kernel,
                             std::int64_t out) {
  // o * stride - pad <= i  and  i < o * stride - pad + kernel.
  const std::int64_t lowest = i + pad - kernel + 1;
  const std::int64_t first = lowest <= 0 ? 0 : (lowest + stride - 1) / stride;
  return {first, std::min<std::int64_t>((i + pad) / stride + 1, out)};
}

// Vector part of a channel run: [0, vector_channels) in steps of L.
inline std::int64_t vector_channels(std::int64_t c) { return c - c % L; }

// Calls fn(image, rows, cols, out) for every output pixel of output rows
// [row_begin, row_end) (row r = n * out_h + oy): the input image it reads,
// the in-bounds rows and columns of its window, and its C outputs.
template <class Fn>
inline void for_each_pool_window(const float* x, float* y, const ConvGeometry& g, std::int64_t row_begin,
                                 std::int64_t row_end, Fn&& fn) {
  const std::int64_t C = g.in_c;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.out_h, oy = r % g.out_h;
    const Span rows = window_span(oy, g.stride_h, g.pad_top, g.kernel_h, g.in_h);
    const float* image = x + n * g.in_h * g.in_w * C;
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      const Span cols = window_span(ox, g.stride_w, g.pad_left, g.kernel_w, g.in_w);
      fn(image, rows, cols, y + (r * g.out_w + ox) * C);
    }
  }
}

void avg_forward(const float* x, float* y, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t C = g.in_c, cv = vector_channels(C);
  for_each_pool_window(x, y, g, row_begin, row_end, [&](const float* image, Span rows, Span cols, float* out) {
    const float count = float(rows.size() * cols.size());
    // Four channel vectors at a time: four chains of additions in flight
    // instead of one waiting on the last (a global pool of 6x6 pixels and
    // 1280 channels: 36 additions one after another per vector). Each
    // channel's sum is in the same order either way.
    std::int64_t c = 0;
    for (; c + 4 * L <= cv; c += 4 * L) {
      V a0 = vbroadcast(0.0f), a1 = a0, a2 = a0, a3 = a0;
      for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
        for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) {
          const float* p = image + (iy * g.in_w + ix) * C + c;
          a0 += vload(p), a1 += vload(p + L), a2 += vload(p + 2 * L), a3 += vload(p + 3 * L);
        }
      const V n = vbroadcast(count);
      vstore(out + c, a0 / n), vstore(out + c + L, a1 / n), vstore(out + c + 2 * L, a2 / n),
          vstore(out + c + 3 * L, a3 / n);
    }
    for (; c < cv; c += L) {
      V acc = vbroadcast(0.0f);
      for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
        for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) acc += vload(image + (iy * g.in_w + ix) * C + c);
      vstore(out + c, acc / vbroadcast(count));
    }
    for (std::int64_t c = cv; c < C; ++c) {
      float acc = 0.0f;
      for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
        for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) acc += image[(iy * g.in_w + ix) * C + c];
      out[c] = acc / count;
    }
  });
}

// The gradients gather into input rows: for each input row r = n * in_h + iy
// of [row_begin, row_end), zeroes that row of dx, then calls
// fn(n, iy, oy, dx_row) for every output row oy whose windows cover it.
template <class Fn>
inline void for_each_covering_output_row(float* dx, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end,
                                         Fn&& fn) {
  const std::int64_t C = g.in_c;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.in_h, iy = r % g.in_h;
    float* dx_row = dx + r * g.in_w * C;
    std::fill(dx_row, dx_row + g.in_w * C, 0.0f);
    const Span out_rows = covering_outputs(iy, g.stride_h, g.pad_top, g.kernel_h, g.out_h);
    for (std::int64_t oy = out_rows.begin; oy < out_rows.end; ++oy) fn(n, iy, oy, dx_row);
  }
}

void avg_backward(const float* dy, float* dx, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t C = g.in_c, cv = vector_channels(C);
  for_each_covering_output_row(
      dx, g, row_begin, row_end, [&](std::int64_t n, std::int64_t iy, std::int64_t oy, float* dx_row) {
        const std::int64_t count_h = window_span(oy, g.stride_h, g.pad_top, g.kernel_h, g.in_h).size();
        for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
          const Span cols = window_span(ox, g.stride_w, g.pad_left, g.kernel_w, g.in_w);
          const float scale = 1.0f / float(count_h * cols.size());
          const V vscale = vbroadcast(scale);
          const float* grad = dy + ((n * g.out_h + oy) * g.out_w + ox) * C;
          for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) {
            float* out = dx_row + ix * C;
            for (std::int64_t c = 0; c < cv; c += L) vstore(out + c, vfma(vload(grad + c), vscale, vload(out + c)));
            for (std::int64_t c = cv; c < C; ++c) out[c] += grad[c] * scale;
          }
        }
      });
}

void max_forward(const float* x, float* y, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t C = g.in_c, cv = vector_channels(C);
  for_each_pool_window(x, y, g, row_begin, row_end, [&](const float* image, Span rows, Span cols, float* out) {
    const float* first = image + (rows.begin * g.in_w + cols.begin) * C;
    for (std::int64_t c = 0; c < cv; c += L) {
      V best = vload(first + c);
      for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
        for (std::int64_t ix = cols.begin; ix < cols.end; ++ix)
          best = vmax(best, vload(image + (iy * g.in_w + ix) * C + c));
      vstore(out + c, best);
    }
    for (std::int64_t c = cv; c < C; ++c) {
      float best = first[c];
      for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
        for (std::int64_t ix = cols.begin; ix < cols.end; ++ix)
          best = std::max(best, image[(iy * g.in_w + ix) * C + c]);
      out[c] = best;
    }
  });
}

void max_argmax(const float* x, float* tap, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t C = g.in_c, cv = vector_channels(C);
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.out_h, oy = r % g.out_h;
    const std::int64_t y0 = oy * g.stride_h - g.pad_top;
    const Span rows = window_span(oy, g.stride_h, g.pad_top, g.kernel_h, g.in_h);
    const float* image = x + n * g.in_h * g.in_w * C;
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      const std::int64_t x0 = ox * g.stride_w - g.pad_left;
      const Span cols = window_span(ox, g.stride_w, g.pad_left, g.kernel_w, g.in_w);
      const float* first = image + (rows.begin * g.in_w + cols.begin) * C;
      const float first_tap = float((rows.begin - y0) * g.kernel_w + (cols.begin - x0));
      float* out = tap + (r * g.out_w + ox) * C;
      // Strictly greater replaces, so ties keep the first tap in row-major order.
      for (std::int64_t c = 0; c < cv; c += L) {
        V best = vload(first + c), best_tap = vbroadcast(first_tap);
        for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
          for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) {
            const V v = vload(image + (iy * g.in_w + ix) * C + c);
            best_tap = vselect_gt(v, best, vbroadcast(float((iy - y0) * g.kernel_w + (ix - x0))), best_tap);
            best = vselect_gt(v, best, v, best);
          }
        vstore(out + c, best_tap);
      }
      for (std::int64_t c = cv; c < C; ++c) {
        float best = first[c], best_tap = first_tap;
        for (std::int64_t iy = rows.begin; iy < rows.end; ++iy)
          for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) {
            const float v = image[(iy * g.in_w + ix) * C + c];
            if (v > best) best = v, best_tap = float((iy - y0) * g.kernel_w + (ix - x0));
          }
        out[c] = best_tap;
      }
    }
  }
}

void max_backward(const float* dy, const float* tap, float* dx, const ConvGeometry& g, std::int64_t row_begin,
                  std::int64_t row_end) {
  const std::int64_t C = g.in_c, cv = vector_channels(C);
  const V zero = vbroadcast(0.0f);
  for_each_covering_output_row(
      dx, g, row_begin, row_end, [&](std::int64_t n, std::int64_t iy, std::int64_t oy, float* dx_row) {
        const std::int64_t ky = iy - (oy * g.stride_h - g.pad_top);
        for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
          const std::int64_t x0 = ox * g.stride_w - g.pad_left;
          const Span cols = window_span(ox, g.stride_w, g.pad_left, g.kernel_w, g.in_w);
          const std::int64_t o = ((n * g.out_h + oy) * g.out_w + ox) * C;
          const float* grad = dy + o;
          const float* taps = tap + o;
          for (std::int64_t ix = cols.begin; ix < cols.end; ++ix) {
            const float here = float(ky * g.kernel_w + (ix - x0));
            const V vhere = vbroadcast(here);
            float* out = dx_row + ix * C;
            // Adds grad where the window's maximum is this tap and +0 elsewhere,
            // which leaves the sum bit-identical to the reference scatter.
            for (std::int64_t c = 0; c < cv; c += L) {
              const V t = vload(taps + c);
              const V hit = vselect_gt(t, vhere, zero, vselect_gt(vhere, t, zero, vload(grad + c)));
              vstore(out + c, vload(out + c) + hit);
            }
            for (std::int64_t c = cv; c < C; ++c)
              if (taps[c] == here) out[c] += grad[c];
          }
        }
      });
}

}  // namespace

extern const PoolKernels pool_table;
const PoolKernels pool_table = {avg_forward, avg_backward, max_forward, max_argmax, max_backward};

}  // namespace petal::cpu::PETAL_ISA_NS
