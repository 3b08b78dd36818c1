// Per-element bodies of the CUDA Conv2D kernels (im2col, the col2im gather of
// the input gradient, the direct kernel for few input channels, the bias and
// ReLU6 epilogue). Plain C++ marked PETAL_HD: the .cu kernels call them once
// per element, and tests/kernels/test_cuda_conv_bodies.cpp runs them on the
// CPU over every index against the CPU ops.
//
// Matrices, row-major: the im2col matrix col [P, K] has one row per output
// pixel p = (n * out_h + oy) * out_w + ox and one column per kernel row
// k = (ky * kernel_w + kx) * in_c + ci, the row order of the HWIO kernel
// viewed as W [K, out_c]; so y [P, out_c] = col x W.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/portable/conv_geometry.hpp"
#include "kernels/portable/host_device.hpp"

namespace petal::cuda_body {

using kernels::ConvGeometry;

// The geometry with 32-bit fields. Every body takes either geometry and does
// its index arithmetic in the geometry's integer type: the kernels pass this
// one when every index of the launch fits (fits_32bit), because 64-bit
// division and modulo cost several times more than 32-bit on the GPU.
struct ConvGeometry32 {
  std::int32_t batch, in_h, in_w, in_c, out_h, out_w, out_c, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
};

// The index type of a geometry (std::int64_t or std::int32_t).
template <class G>
using IndexOf = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<G>().batch)>>;

inline ConvGeometry32 narrow(const ConvGeometry& g) {
  return {std::int32_t(g.batch),    std::int32_t(g.in_h),     std::int32_t(g.in_w),     std::int32_t(g.in_c),
          std::int32_t(g.out_h),    std::int32_t(g.out_w),    std::int32_t(g.out_c),    std::int32_t(g.kernel_h),
          std::int32_t(g.kernel_w), std::int32_t(g.stride_h), std::int32_t(g.stride_w), std::int32_t(g.pad_top),
          std::int32_t(g.pad_left)};
}

// True when the input, the output, an im2col matrix of the whole geometry
// and the depthwise kernel-gradient columns all have fewer than 2^31
// elements (and so does `extra`): then every index a body computes fits.
inline bool fits_32bit(const ConvGeometry& g, std::int64_t extra = 0) {
  constexpr std::int64_t kLimit = std::int64_t{1} << 31;
  const std::int64_t sizes[] = {g.batch * g.in_h * g.in_w * g.in_c, g.batch * g.out_h * g.out_w * g.out_c,
                                g.batch * g.out_h * g.out_w * g.kernel_h * g.kernel_w * g.in_c,
                                g.kernel_h * g.kernel_w * g.out_c, g.in_h + g.pad_top + g.kernel_h,
                                g.in_w + g.pad_left + g.kernel_w, extra};
  for (std::int64_t s : sizes)
    if (s < 0 || s >= kLimit) return false;
  return true;
}

// Coordinates of a flat NHWC index over [*, h, w, channels].
template <class I>
struct NhwcIndex {
  I n, y, x, c;
};

template <class I>
PETAL_HD_INLINE NhwcIndex<I> split_nhwc(I i, I h, I w, I channels) {
  const I c = i % channels, pixel = i / channels;
  const I x = pixel % w, rest = pixel / w;
  return {rest / h, rest % h, x, c};
}

// The output pixel an output element o (flat NHWC index into y) belongs to,
// and the input pixel of an input element i.
template <class G>
PETAL_HD_INLINE NhwcIndex<IndexOf<G>> output_coords(const G& g, IndexOf<G> o) {
  return split_nhwc(o, g.out_h, g.out_w, g.out_c);
}
template <class G>
PETAL_HD_INLINE NhwcIndex<IndexOf<G>> input_coords(const G& g, IndexOf<G> i) {
  return split_nhwc(i, g.in_h, g.in_w, g.in_c);
}

// Output coordinate along one axis that reads input coordinate `in` through
// kernel tap `tap`, or -1 when none does (in + pad - tap must be a
// non-negative multiple of the stride below out * stride).
template <class I>
PETAL_HD_INLINE I output_for_tap(I in, I tap, I pad, I stride, I out) {
  const I t = in + pad - tap;
  if (t < 0 || t % stride != 0) return -1;
  const I o = t / stride;
  return o < out ? o : -1;
}

// The two directions of a window, each visiting taps in row-major (ky, kx)
// order, which fixes the order of every sum and of the max pool's "first
// maximum":
// fn(iy, ix, ky, kx) for each tap of output pixel (oy, ox)'s window that
// lands inside the input (forward gathers)...
template <class G, class Fn>
PETAL_HD_INLINE void for_each_window_tap(const G& g, IndexOf<G> oy, IndexOf<G> ox, Fn&& fn) {
  using I = IndexOf<G>;
  for (I ky = 0; ky < g.kernel_h; ++ky) {
    const I iy = oy * g.stride_h - g.pad_top + ky;
    if (iy < 0 || iy >= g.in_h) continue;
    for (I kx = 0; kx < g.kernel_w; ++kx) {
      const I ix = ox * g.stride_w - g.pad_left + kx;
      if (ix < 0 || ix >= g.in_w) continue;
      fn(iy, ix, ky, kx);
    }
  }
}

// ...and fn(oy, ox, ky, kx) for each output pixel whose window reads input
// pixel (iy, ix), through tap (ky, kx) (gradient gathers: no atomics).
template <class G, class Fn>
PETAL_HD_INLINE void for_each_window_reading(const G& g, IndexOf<G> iy, IndexOf<G> ix, Fn&& fn) {
  using I = IndexOf<G>;
  for (I ky = 0; ky < g.kernel_h; ++ky) {
    const I oy = output_for_tap(iy, ky, g.pad_top, g.stride_h, g.out_h);
    if (oy < 0) continue;
    for (I kx = 0; kx < g.kernel_w; ++kx) {
      const I ox = output_for_tap(ix, kx, g.pad_left, g.stride_w, g.out_w);
      if (ox < 0) continue;
      fn(oy, ox, ky, kx);
    }
  }
}

template <class G>
PETAL_HD_INLINE IndexOf<G> conv_columns(const G& g) {
  return g.kernel_h * g.kernel_w * g.in_c;
}

// The input pixel (n * in_h + iy) * in_w + ix that tap (ky, kx) of output
// pixel p = (n * out_h + oy) * out_w + ox reads, or -1 in the padding.
template <class G>
PETAL_HD_INLINE IndexOf<G> tap_input_pixel(const G& g, IndexOf<G> p, IndexOf<G> ky, IndexOf<G> kx) {
  using I = IndexOf<G>;
  const I ox = p % g.out_w, rest = p / g.out_w;
  const I oy = rest % g.out_h, n = rest / g.out_h;
  const I iy = oy * g.stride_h - g.pad_top + ky, ix = ox * g.stride_w - g.pad_left + kx;
  if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) return -1;
  return (n * g.in_h + iy) * g.in_w + ix;
}

// Flat index into x of im2col element (p, k), or -1 where the tap falls in
// the padding (the element is then zero).
template <class G>
PETAL_HD_INLINE IndexOf<G> im2col_source(const G& g, IndexOf<G> p, IndexOf<G> k) {
  using I = IndexOf<G>;
  const I ci = k % g.in_c, tap = k / g.in_c;
  const I pixel = tap_input_pixel(g, p, tap / g.kernel_w, tap % g.kernel_w);
  return pixel < 0 ? -1 : pixel * g.in_c + ci;
}

template <class T, class G>
PETAL_HD_INLINE T im2col_element(const T* x, const G& g, IndexOf<G> p, IndexOf<G> k) {
  const IndexOf<G> src = im2col_source(g, p, k);
  return src < 0 ? T(0) : x[src];
}

// Input-gradient element i (flat NHWC index into dx) gathered from the
// column gradient dcol [P, K] = dy x W^T: the sum of every dcol element
// whose im2col source is i. A gather, so no atomics and a fixed order.
template <class T, class G>
PETAL_HD_INLINE T col2im_gather(const T* dcol, const G& g, IndexOf<G> i) {
  using I = IndexOf<G>;
  const NhwcIndex<I> in = input_coords(g, i);
  const I k_count = conv_columns(g);
  T sum = T(0);
  for_each_window_reading(g, in.y, in.x, [&](I oy, I ox, I ky, I kx) {
    const I p = (in.n * g.out_h + oy) * g.out_w + ox;
    sum += dcol[p * k_count + (ky * g.kernel_w + kx) * g.in_c + in.c];
  });
  return sum;
}

// Direct convolution output element o (flat NHWC index into y), without
// bias: for the stem (3 input channels), where an im2col GEMM has K = 27 and
// would move more memory than it computes.
template <class T, class G>
PETAL_HD_INLINE T conv2d_direct_element(const T* x, const T* w, const G& g, IndexOf<G> o) {
  using I = IndexOf<G>;
  const NhwcIndex<I> out = output_coords(g, o);
  T sum = T(0);
  for_each_window_tap(g, out.y, out.x, [&](I iy, I ix, I ky, I kx) {
    const T* in = x + ((out.n * g.in_h + iy) * g.in_w + ix) * g.in_c;
    const T* wk = w + (ky * g.kernel_w + kx) * g.in_c * g.out_c + out.c;
    for (I ci = 0; ci < g.in_c; ++ci) sum += in[ci] * wk[ci * g.out_c];
  });
  return sum;
}

template <class T>
PETAL_HD_INLINE T clamp_relu6(T v) {
  return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
}

// Bias (may be null) then the optional ReLU6 clamp, for output channel c.
template <class T, class I>
PETAL_HD_INLINE T conv_epilogue(T v, const T* bias, I c, bool relu6) {
  if (bias) v += bias[c];
  return relu6 ? clamp_relu6(v) : v;
}

// 1x1, stride 1, no padding: the im2col matrix is x itself.
inline bool is_pointwise_gemm(const ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
         g.pad_left == 0 && g.out_h == g.in_h && g.out_w == g.in_w;
}

// Few input channels (the 3 -> 32 stem): the direct kernel beats im2col + GEMM.
inline bool uses_direct_kernel(const ConvGeometry& g) { return g.in_c <= 4 && !is_pointwise_gemm(g); }

// Images per im2col chunk: as many as keep the column matrix within
// max_elements (at least one image, whatever its size).
inline std::int64_t im2col_chunk_images(const ConvGeometry& g, std::int64_t max_elements) {
  const std::int64_t per_image = g.out_h * g.out_w * conv_columns(g);
  std::int64_t images = per_image > 0 ? max_elements / per_image : g.batch;
  if (images < 1) images = 1;
  return images < g.batch ? images : g.batch;
}

// The geometry of images [first, first + count) of g (pointers are offset by the caller).
inline ConvGeometry chunk_geometry(const ConvGeometry& g, std::int64_t count) {
  ConvGeometry c = g;
  c.batch = count;
  return c;
}

}  // namespace petal::cuda_body
