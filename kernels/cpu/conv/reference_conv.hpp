// Plain loops for every convolution-family kernel, in float and double.
// They are the definition the optimised float32 kernels are tested against,
// and the float64 path of the ops (gradient checks). Single-threaded, no
// SIMD, no cleverness: one output element at a time. Each is named
// reference_<kernel> so that it is never mistaken for the fast kernel of the
// same op (cpu::conv2d_forward and the others beside it).
#pragma once

#include <cstdint>

#include "kernels/cpu/conv/conv_geometry.hpp"

namespace petal::cpu {

// y[n, oy, ox, co] = bias[co] + sum x[n, oy*s - pad + ky, ox*s - pad + kx, ci] * w[ky, kx, ci, co]
// (taps outside the input read zero). bias may be null.
template <class T>
void reference_conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g);
// dx = the transpose of the forward map applied to dy (overwrites dx).
template <class T>
void reference_conv2d_backward_input(const T* dy, const T* w, T* dx, const ConvGeometry& g);
// dw[ky, kx, ci, co] = sum over n, oy, ox of dy * x (overwrites dw).
template <class T>
void reference_conv2d_backward_kernel(const T* dy, const T* x, T* dw, const ConvGeometry& g);

// Depthwise with multiplier m = out_c / in_c: output channel c*m + j reads
// input channel c through w[ky, kx, c, j]. bias [out_c] may be null.
template <class T>
void reference_depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g);
template <class T>
void reference_depthwise_backward_input(const T* dy, const T* w, T* dx, const ConvGeometry& g);
template <class T>
void reference_depthwise_backward_kernel(const T* dy, const T* x, T* dw, const ConvGeometry& g);

// sum over rows of a [rows, channels] matrix (bias gradients).
template <class T>
void reference_channel_sum(const T* x, std::int64_t rows, std::int64_t channels, T* out);

// Batch norm over rows of [rows, channels], training mode: mean and biased
// variance of each channel; y = (x - mean) / sqrt(var + eps) * gamma + beta,
// then clamped to [0, 6] when relu6.
template <class T>
void reference_batch_norm_training(const T* x, const T* gamma, const T* beta, std::int64_t rows, std::int64_t channels,
                                   double epsilon, bool relu6, T* y, T* mean, T* biased_variance);
// Gradients of reference_batch_norm_training (relu6 masks by 0 < pre-activation < 6).
template <class T>
void reference_batch_norm_backward(const T* dy, const T* x, const T* gamma, const T* beta, const T* mean,
                                   const T* biased_variance, std::int64_t rows, std::int64_t channels, double epsilon,
                                   bool relu6, T* dx, T* dgamma, T* dbeta);

// Pooling windows with TensorFlow semantics: average over the in-bounds
// elements only (padding not counted), max over the in-bounds elements.
// g.in_c == g.out_c; kernel_h/kernel_w are the pool size.
template <class T>
void reference_avg_pool_forward(const T* x, T* y, const ConvGeometry& g);
template <class T>
void reference_avg_pool_backward(const T* dy, T* dx, const ConvGeometry& g);
template <class T>
void reference_max_pool_forward(const T* x, T* y, const ConvGeometry& g);
// The gradient goes to the first maximum of each window (as TensorFlow).
template <class T>
void reference_max_pool_backward(const T* dy, const T* x, T* dx, const ConvGeometry& g);

}  // namespace petal::cpu
