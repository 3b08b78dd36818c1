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
  const NhwcIndex<I> out = output_coords(g, o);
  const PoolWindow<I> w = pool_window(g, out.y, out.x);
  T sum = T(0);
  for (I iy = w.y0; iy < w.y1; ++iy)
    for (I ix = w.x0; ix < w.x1; ++ix) sum += x[((out.n * g.in_h + iy) * g.in_w + ix) * g.in_c + out.c];
  const I count = w.count();
  return count > 0 ? sum / T(count) : T(0);
}

template <class T, class G>
PETAL_HD_INLINE T avg_pool_input_grad_element(const T* dy, const G& g, IndexOf<G> i) {
  using I = IndexOf<G>;
  const NhwcIndex<I> in = input_coords(g, i);
  T sum = T(0);
  for_each_window_reading(g, in.y, in.x, [&](I oy, I ox, I, I) {
    sum += dy[((in.n * g.out_h + oy) * g.out_w + ox) * g.out_c + in.c] / T(pool_window(g, oy, ox).count());
  });
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
  const NhwcIndex<IndexOf<G>> out = output_coords(g, o);
  return x[max_pool_argmax(x, g, out.n, out.y, out.x, out.c)];
}

// dx element i: the sum of dy over the windows whose first maximum is i.
template <class T, class G>
PETAL_HD_INLINE T max_pool_input_grad_element(const T* dy, const T* x, const G& g, IndexOf<G> i) {
  using I = IndexOf<G>;
  const NhwcIndex<I> in = input_coords(g, i);
  T sum = T(0);
  for_each_window_reading(g, in.y, in.x, [&](I oy, I ox, I, I) {
    if (max_pool_argmax(x, g, in.n, oy, ox, in.c) == i)
      sum += dy[((in.n * g.out_h + oy) * g.out_w + ox) * g.out_c + in.c];
  });
  return sum;
}

// Zero padding of [N, H, W, C] by (top, left) into [N, out_h, out_w, C]:
// the source index of output element o, or -1 in the padding.
template <class I>
PETAL_HD_INLINE I zero_pad_source(I in_h, I in_w, I channels, I out_h, I out_w, I top, I left, I o) {
  const NhwcIndex<I> out = split_nhwc(o, out_h, out_w, channels);
  const I y = out.y - top, x = out.x - left;
  if (y < 0 || y >= in_h || x < 0 || x >= in_w) return -1;
  return ((out.n * in_h + y) * in_w + x) * channels + out.c;
}

// The padding's backward crop: source index in the padded gradient of
// element i of the [N, h, w, C] result.
template <class I>
PETAL_HD_INLINE I crop_source(I h, I w, I channels, I padded_h, I padded_w, I top, I left, I i) {
  const NhwcIndex<I> at = split_nhwc(i, h, w, channels);
  return ((at.n * padded_h + at.y + top) * padded_w + at.x + left) * channels + at.c;
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
