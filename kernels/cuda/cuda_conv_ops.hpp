// The CUDA kernels behind kernels/ops_conv.hpp (plain C++, no CUDA types;
// implemented in kernels/cuda/conv/*.cu, described in its README.md).
// The ops (kernels/ops_conv.cpp and its siblings) check the arguments
// (shapes, dtypes, one device) and build the geometry, then call these for
// CUDA tensors. Only kernels/portable headers are shared with the layers
// above, none of the ops layer or the CPU backend. Inputs may be
// strided views (they are made contiguous on the device); each result is a
// new contiguous tensor on the operands' device. float32 and float64.
#pragma once

#include <cstdint>

#include "core/tensor.hpp"
#include "kernels/portable/conv_geometry.hpp"
#include "kernels/portable/conv_results.hpp"

namespace petal::cuda_ops {

using kernels::ConvGeometry;

// ---- Conv2D: g.out_c = Cout; bias may be undefined ----
Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvGeometry& g, bool relu6);
Tensor conv2d_backward_input(const Tensor& grad, const Tensor& kernel, const ConvGeometry& g);
Tensor conv2d_backward_kernel(const Tensor& grad, const Tensor& x, const Shape& kernel_shape, const ConvGeometry& g,
                              Tensor* grad_bias);

// ---- DepthwiseConv2D: g.out_c = C * multiplier ----
Tensor depthwise_conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvGeometry& g,
                        bool relu6);
Tensor depthwise_conv2d_backward_input(const Tensor& grad, const Tensor& kernel, const ConvGeometry& g);
Tensor depthwise_conv2d_backward_kernel(const Tensor& grad, const Tensor& x, const Shape& kernel_shape,
                                        const ConvGeometry& g, Tensor* grad_bias);

// ---- BatchNormalization over the last axis ----
Tensor batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6,
                           Tensor& mean, Tensor& biased_variance);
ops::BatchNormGrads batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        const Tensor& mean, const Tensor& biased_variance, double epsilon, bool relu6);
ops::FoldedBatchNorm fold_batch_norm(const Tensor& gamma, const Tensor& beta, const Tensor& moving_mean,
                                     const Tensor& moving_variance, double epsilon);
Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, bool relu6);
// In place on the (contiguous, CUDA) moving statistics.
void update_moving_statistics(Tensor& moving_mean, Tensor& moving_variance, const Tensor& batch_mean,
                              const Tensor& batch_biased_variance, std::int64_t count, double momentum);

// ---- fusion ----
// The folded scale/shift multiply the kernel's output channels on the device,
// then the convolution runs with the folded bias and ReLU6 in its epilogue.
Tensor conv2d_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                 const ops::FoldedBatchNorm& bn, const ConvGeometry& g, bool relu6);
Tensor depthwise_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                    const ops::FoldedBatchNorm& bn, const ConvGeometry& g, bool relu6);
// Convolution without bias, then batch_norm_training on its output (two
// kernels: the statistics are not gathered inside the convolution on CUDA).
ops::ConvBatchNormResult conv_batch_norm_training(const Tensor& x, const Tensor& kernel, const ConvGeometry& g,
                                                  const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6,
                                                  bool depthwise);

// ---- padding and pooling (g.in_c == g.out_c; kernel_h/kernel_w = pool size) ----
Tensor zero_pad2d(const Tensor& x, std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right);
Tensor zero_pad2d_backward(const Tensor& grad, std::int64_t top, std::int64_t bottom, std::int64_t left,
                           std::int64_t right);
Tensor global_average_pool2d(const Tensor& x);
Tensor global_average_pool2d_backward(const Tensor& grad, const Shape& input_shape);
Tensor average_pool2d(const Tensor& x, const ConvGeometry& g);
Tensor average_pool2d_backward(const Tensor& grad, const ConvGeometry& g);
Tensor max_pool2d(const Tensor& x, const ConvGeometry& g);
Tensor max_pool2d_backward(const Tensor& grad, const Tensor& x, const ConvGeometry& g);

}  // namespace petal::cuda_ops
