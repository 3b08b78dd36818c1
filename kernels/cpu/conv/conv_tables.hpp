// Per-ISA float32 kernel tables of the convolution family. Each table is
// defined three times (isa_scalar, isa_avx2, isa_avx512) by the sources in
// this folder that are compiled once per ISA; the accessors at the bottom pick
// the active ISA's. The drivers beside them (gemm_conv.cpp, depthwise_conv.cpp,
// batch_norm.cpp, pooling.cpp) split work over threads and call these on row
// ranges. Kernels never throw.
#pragma once

#include <cstdint>

#include "kernels/cpu/conv/conv_geometry.hpp"

namespace petal::cpu {

// Depthwise convolution with depth multiplier 1 (g.in_c == g.out_c == C).
struct DepthwiseKernels {
  // Output rows [row_begin, row_end), row = n * out_h + oy:
  // y = conv(x, w) + bias (bias may be null), clamped to [0, 6] when relu6.
  void (*forward)(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
                  std::int64_t row_begin, std::int64_t row_end);
  // Input rows [row_begin, row_end), row = n * in_h + iy: dx (overwritten).
  // Gathers from dy, so threads own disjoint rows of dx.
  void (*backward_input)(const float* dy, const float* w, float* dx, const ConvGeometry& g, std::int64_t row_begin,
                         std::int64_t row_end);
  // Output rows [row_begin, row_end): dw [kh*kw, C] += sum dy * x and, when
  // dbias is not null, dbias [C] += sum dy. Callers give each thread its own
  // accumulators and add them up in a fixed order.
  void (*backward_kernel)(const float* dy, const float* x, float* dw, float* dbias, const ConvGeometry& g,
                          std::int64_t row_begin, std::int64_t row_end);
};

// Direct convolution for few input channels (the 3-channel stem of
// MobileNetV2), vectorised over output channels. Output rows as above;
// w is HWIO, bias may be null.
struct DirectConvKernels {
  void (*forward)(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
                  std::int64_t row_begin, std::int64_t row_end);
  // Output rows [row_begin, row_end): dw [kh*kw*Cin, Cout] += the weight
  // gradient of those rows (no im2col buffer; callers give each thread its
  // own dw and add them up in a fixed order).
  void (*weight_grad)(const float* x, const float* dy, float* dw, const ConvGeometry& g, std::int64_t row_begin,
                      std::int64_t row_end);
};

// Weight gradient of a 1x1 convolution (or of an im2col block) without
// packing: dw [Cin, Cout] += x [pixels, Cin]^T dy [pixels, Cout], where
// rows of x, dy and dw are ldx, ldy and ldw floats apart (so a caller can
// hand threads column ranges of x or dy and the matching part of dw).
struct PointwiseKernels {
  void (*weight_grad)(const float* x, std::int64_t ldx, const float* dy, std::int64_t ldy, std::int64_t pixels,
                      std::int64_t cin, std::int64_t cout, float* dw, std::int64_t ldw);
};

// Per-channel kernels over a flat run of `count` elements of a [rows, C]
// matrix. Per-channel parameters come expanded to `period` = a multiple of
// both C and `lanes` (element i uses parameter i % period), so rows of any
// width run on whole vectors. count may be any length; the run starts at a
// row boundary.
struct ChannelKernels {
  std::int64_t lanes;
  // sum[p] += (x - shift)[p], sumsq[p] += (x - shift)[p]^2 for each period slot p.
  void (*shifted_sums)(const float* x, std::int64_t count, std::int64_t period, const float* shift, float* sum,
                       float* sumsq);
  // acc[p] += x over each period slot (bias gradients).
  void (*sums)(const float* x, std::int64_t count, std::int64_t period, float* acc);
  // y = x * scale + shift (clamped to [0, 6] when relu6); scale may be null
  // (1); y may alias x. With stream, y is written past the caches
  // (non-temporal stores, fenced before returning).
  void (*affine)(const float* x, std::int64_t count, std::int64_t period, const float* scale, const float* shift,
                 float* y, bool relu6, bool stream);
  // Batch-norm backward, pass 1: g' = dy, or dy where 0 < x * scale + shift < 6
  // when relu6; sum_g[p] += g', sum_gxc[p] += g' * (x - mean).
  void (*bn_backward_sums)(const float* dy, const float* x, std::int64_t count, std::int64_t period,
                           const float* scale, const float* shift, const float* mean, bool relu6, float* sum_g,
                           float* sum_gxc);
  // Pass 2: dx = k_g * g' + k_x * x + k_c (g' masked as in pass 1).
  void (*bn_backward_apply)(const float* dy, const float* x, std::int64_t count, std::int64_t period,
                            const float* scale, const float* shift, bool relu6, const float* k_g, const float* k_x,
                            const float* k_c, float* dx, bool stream);
  // Inference batch norm as scale = gamma / sqrt(var + eps) and shift =
  // beta - mean * scale, computed in double and rounded once to float.
  void (*fold_batch_norm)(const float* gamma, const float* beta, const float* mean, const float* var,
                          std::int64_t channels, double epsilon, float* scale, float* shift);
};

const DepthwiseKernels& depthwise_kernels();
const DirectConvKernels& direct_conv_kernels();
const ChannelKernels& channel_kernels();
const PointwiseKernels& pointwise_kernels();

}  // namespace petal::cpu
