// Per-element bodies of the CUDA DepthwiseConv2D kernels over NHWC, with the
// flattened output channel oc = c * multiplier + j innermost (consecutive
// threads take consecutive channels, so loads and stores coalesce). The
// kernel is [kh, kw, C, multiplier], i.e. [taps, out_c] with out_c = C * M.
// TF "same" padding arrives as explicit pad_top/pad_left; the bottom/right
// padding follows from out_h/out_w. See conv_body.hpp for the testing idea.
#pragma once

#include <cstdint>

#include "kernels/cuda/conv/conv_body.hpp"

namespace petal::cuda_body {

template <class G>
PETAL_HD_INLINE IndexOf<G> depthwise_multiplier(const G& g) {
  return g.out_c / g.in_c;
}

// The multiplier-1 fast path: a geometry whose multiplier is the constant 1,
// so the channel division folds away and the multiplier loop unrolls (the
// kernels use it whenever out_c == in_c, MobileNetV2's case).
template <class G>
struct UnitMultiplier : G {};

template <class G>
UnitMultiplier<G> unit_multiplier(const G& g) {
  return UnitMultiplier<G>{g};
}

template <class G>
PETAL_HD_INLINE constexpr IndexOf<G> depthwise_multiplier(const UnitMultiplier<G>&) {
  return 1;
}

// Output element o (flat NHWC index into y), without bias.
template <class T, class G>
PETAL_HD_INLINE T depthwise_output_element(const T* x, const T* w, const G& g, IndexOf<G> o) {
  using I = IndexOf<G>;
  const NhwcIndex<I> out = output_coords(g, o);
  const I oc = out.c, c = oc / depthwise_multiplier(g);
  T sum = T(0);
  for_each_window_tap(g, out.y, out.x, [&](I iy, I ix, I ky, I kx) {
    sum += x[((out.n * g.in_h + iy) * g.in_w + ix) * g.in_c + c] * w[(ky * g.kernel_w + kx) * g.out_c + oc];
  });
  return sum;
}

// Input-gradient element i (flat NHWC index into dx): gathers dy over every
// output pixel whose window reads it and over the multiplier's channels.
template <class T, class G>
PETAL_HD_INLINE T depthwise_input_grad_element(const T* dy, const T* w, const G& g, IndexOf<G> i) {
  using I = IndexOf<G>;
  const NhwcIndex<I> in = input_coords(g, i);
  const I m = depthwise_multiplier(g);
  T sum = T(0);
  for_each_window_reading(g, in.y, in.x, [&](I oy, I ox, I ky, I kx) {
    const T* grad = dy + ((in.n * g.out_h + oy) * g.out_w + ox) * g.out_c + in.c * m;
    const T* wk = w + (ky * g.kernel_w + kx) * g.out_c + in.c * m;
    for (I j = 0; j < m; ++j) sum += grad[j] * wk[j];
  });
  return sum;
}

// One term of the kernel gradient dw[tap, oc] = sum over output pixels p of
// dy[p, oc] * x[the input tap reads at p] (zero in the padding). The kernel
// gradient is a column reduction over p of these terms (column = tap * out_c
// + oc), done by the deterministic channel reduction of reduce_body.hpp.
template <class T, class G>
PETAL_HD_INLINE T depthwise_kernel_grad_term(const T* dy, const T* x, const G& g, IndexOf<G> p, IndexOf<G> column) {
  using I = IndexOf<G>;
  const I oc = column % g.out_c, tap = column / g.out_c;
  const I pixel = tap_input_pixel(g, p, tap / g.kernel_w, tap % g.kernel_w);
  if (pixel < 0) return T(0);
  return dy[p * g.out_c + oc] * x[pixel * g.in_c + oc / depthwise_multiplier(g)];
}

}  // namespace petal::cuda_body
