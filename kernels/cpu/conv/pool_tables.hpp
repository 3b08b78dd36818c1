// Per-ISA float32 pooling kernels (AveragePooling2D with TensorFlow's
// "padding not counted" averages, MaxPooling2D with the gradient to the first
// maximum of each window), defined three times by pool_kernels.cpp (isa_scalar,
// isa_avx2, isa_avx512); pool_kernels() picks the active ISA's. All work on
// NHWC data with g.in_c == g.out_c, vectorised over channels, on a range of
// rows so that kernels/cpu/conv/pooling.cpp can split rows over threads.
// Every row is computed on its own, so results do not depend on the split.
// Kernels never throw.
#pragma once

#include <cstdint>

#include "kernels/cpu/conv/conv_geometry.hpp"

namespace petal::cpu {

struct PoolKernels {
  // Output rows [row_begin, row_end), row = n * out_h + oy: y = mean of the
  // in-bounds elements of each window.
  void (*avg_forward)(const float* x, float* y, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end);
  // Input rows [row_begin, row_end), row = n * in_h + iy: dx (overwritten)
  // gathers dy / window count from every window covering it.
  void (*avg_backward)(const float* dy, float* dx, const ConvGeometry& g, std::int64_t row_begin,
                       std::int64_t row_end);
  // Output rows: y = max of the in-bounds elements of each window.
  void (*max_forward)(const float* x, float* y, const ConvGeometry& g, std::int64_t row_begin, std::int64_t row_end);
  // Output rows: tap[o] = ky * kernel_w + kx of the first maximum of window o
  // (as a float, exact below 2^24 taps), for max_backward.
  void (*max_argmax)(const float* x, float* tap, const ConvGeometry& g, std::int64_t row_begin,
                     std::int64_t row_end);
  // Input rows: dx (overwritten) = sum of dy over the windows whose first
  // maximum (from max_argmax) is this element, added in output order as the
  // reference scatter does.
  void (*max_backward)(const float* dy, const float* tap, float* dx, const ConvGeometry& g, std::int64_t row_begin,
                       std::int64_t row_end);
};

const PoolKernels& pool_kernels();

}  // namespace petal::cpu
