// Per-element bodies of the CUDA padding and pooling kernels (NHWC, TF
// semantics: the average counts in-bounds elements only, max ignores the
// padding and sends its gradient to the first maximum of the window in
// row-major window order). Gradients are gathers over the windows that
// contain an input element, so no atomics. g.in_c == g.out_c; kernel_h and
// kernel_w are the pool size.
#pragma once

#include <cstdint>

#include "kernels/cuda/conv/conv_body.hpp"

namespace petal::cuda_body {

// The in-bounds rows [y0, y1) and columns [x0, x1) of a window.
template <class I>
struct PoolWindow {
  I y0, y1, x0, x1;
  PETAL_HD I count() const { return (y1 - y0) * (x1 - x0); }
};

template <class G>
PETAL_HD_INLINE PoolWindow<IndexOf<G>> pool_window(const G& g, IndexOf<G> oy, IndexOf<G> ox) {
  PoolWindow<IndexOf<G>> w;
  w.y0 = oy * g.stride_h - g.pad_top, w.x0 = ox * g.stride_w - g.pad_left;
  w.y1 = w.y0 + g.kernel_h, w.x1 = w.x0 + g.kernel_w;
  if (w.y0 < 0) w.y0 = 0;
  if (w.x0 < 0) w.x0 = 0;
  if (w.y1 > g.in_h) w.y1 = g.in_h;
  if (w.x1 > g.in_w) w.x1 = g.in_w;
  return w;
}

template <class T, class G>
PETAL_HD_INLINE T avg_pool_output_element(const T* x, const G& g, IndexOf<G> o) {
  using I = IndexOf<G>;
  const I c = o % g.out_c, pixel = o / g.out_c;
  const I ox = pixel % g.out_w, rest = pixel / g.out_w;
  const I oy = rest % g.out_h, n = rest / g.out_h;
  const PoolWindow<I> w = pool_window(g, oy, ox);
  T sum = T(0);
  for (I iy = w.y0; iy < w.y1; ++iy)
    for (I ix = w.x0; ix < w.x1; ++ix) sum += x[((n * g.in_h + iy) * g.in_w + ix) * g.in_c + c];
  const I count = w.count();
  return count > 0 ? sum / T(count) : T(0);
}

template <class T, class G>
PETAL_HD_INLINE T avg_pool_input_grad_element(const T* dy, const G& g, IndexOf<G> i) {
  using I = IndexOf<G>;
  const I c = i % g.in_c, pixel = i / g.in_c;
  const I ix = pixel % g.in_w, rest = pixel / g.in_w;
  const I iy = rest % g.in_h, n = rest / g.in_h;
  T sum = T(0);
  for (I ky = 0; ky < g.kernel_h; ++ky) {
    const I oy = output_for_tap(iy, ky, g.pad_top, g.stride_h, g.out_h);
    if (oy < 0) continue;
    for (I kx = 0; kx < g.kernel_w; ++kx) {
      const I ox = output_for_tap(ix, kx, g.pad_left, g.stride_w, g.out_w);
      if (ox < 0) continue;
      sum += dy[((n * g.out_h + oy) * g.out_w + ox) * g.out_c + c] / T(pool_window(g, oy, ox).count());
    }
  }
  return sum;
}

// Flat input index of the first maximum of output element (n, oy, ox, c)'s
// window (the first in-bounds element when the window holds only NaNs).
template <class T, class G>
PETAL_HD_INLINE IndexOf<G> max_pool_argmax(const T* x, const G& g, IndexOf<G> n, IndexOf<G> oy, IndexOf<G> ox,
                                           IndexOf<G> c) {
  using I = IndexOf<G>;
  const PoolWindow<I> w = pool_window(g, oy, ox);
  I best_index = -1;
  T best = T(0);
  for (I iy = w.y0; iy < w.y1; ++iy)
    for (I ix = w.x0; ix < w.x1; ++ix) {
      const I i = ((n * g.in_h + iy) * g.in_w + ix) * g.in_c + c;
      if (best_index < 0 || x[i] > best) best = x[i], best_index = i;
    }
  return best_index;
}

template <class T, class G>
PETAL_HD_INLINE T max_pool_output_element(const T* x, const G& g, IndexOf<G> o) {
  using I = IndexOf<G>;
  const I c = o % g.out_c, pixel = o / g.out_c;
  const I ox = pixel % g.out_w, rest = pixel / g.out_w;
  const I oy = rest % g.out_h, n = rest / g.out_h;
  return x[max_pool_argmax(x, g, n, oy, ox, c)];
}

// dx element i: the sum of dy over the windows whose first maximum is i.
template <class T, class G>
PETAL_HD_INLINE T max_pool_input_grad_element(const T* dy, const T* x, const G& g, IndexOf<G> i) {
  using I = IndexOf<G>;
  const I c = i % g.in_c, pixel = i / g.in_c;
  const I ix = pixel % g.in_w, rest = pixel / g.in_w;
  const I iy = rest % g.in_h, n = rest / g.in_h;
  T sum = T(0);
  for (I ky = 0; ky < g.kernel_h; ++ky) {
    const I oy = output_for_tap(iy, ky, g.pad_top, g.stride_h, g.out_h);
    if (oy < 0) continue;
    for (I kx = 0; kx < g.kernel_w; ++kx) {
      const I ox = output_for_tap(ix, kx, g.pad_left, g.stride_w, g.out_w);
      if (ox < 0) continue;
      if (max_pool_argmax(x, g, n, oy, ox, c) == i) sum += dy[((n * g.out_h + oy) * g.out_w + ox) * g.out_c + c];
    }
  }
  return sum;
}

// Zero padding of [N, H, W, C] by (top, left) into [N, out_h, out_w, C]:
// the source index of output element o, or -1 in the padding.
template <class I>
PETAL_HD_INLINE I zero_pad_source(I in_h, I in_w, I channels, I out_h, I out_w, I top, I left, I o) {
  const I c = o % channels, pixel = o / channels;
  const I x = pixel % out_w - left, rest = pixel / out_w;
  const I y = rest % out_h - top, n = rest / out_h;
  if (y < 0 || y >= in_h || x < 0 || x >= in_w) return -1;
  return ((n * in_h + y) * in_w + x) * channels + c;
}

// The padding's backward crop: source index in the padded gradient of
// element i of the [N, h, w, C] result.
template <class I>
PETAL_HD_INLINE I crop_source(I h, I w, I channels, I padded_h, I padded_w, I top, I left, I i) {
  const I c = i % channels, pixel = i / channels;
  const I x = pixel % w, rest = pixel / w;
  const I y = rest % h, n = rest / h;
  return ((n * padded_h + y + top) * padded_w + x + left) * channels + c;
}

// Global average pool element (n, c) of x [N, pixels, C]: summed in pixel order.
template <class T, class I>
PETAL_HD_INLINE T global_average_element(const T* x, I pixels, I channels, I o) {
  const I c = o % channels, n = o / channels;
  T sum = T(0);
  for (I p = 0; p < pixels; ++p) sum += x[(n * pixels + p) * channels + c];
  return sum / T(pixels);
}

}  // namespace petal::cuda_body
