// The multi-tensor results of the convolution-family ops (kernels/ops_conv.hpp),
// here so that the CUDA backend (kernels/cuda/cuda_conv_ops.hpp) returns the
// same types without including the ops layer above it.
#pragma once

#include "core/tensor.hpp"

namespace petal::ops {

// Gradients of batch_norm_training with respect to x, gamma and beta.
struct BatchNormGrads {
  Tensor x, gamma, beta;
};

// Inference batch norm with the moving statistics folded into a per-channel
// scale and shift: scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
struct FoldedBatchNorm {
  Tensor scale, shift;
};

// A convolution (no bias) + batch norm (+ ReLU6) in training: the output y,
// the convolution's output (batch_norm_backward's x) and the batch statistics.
struct ConvBatchNormResult {
  Tensor y, conv_out, mean, biased_variance;
};

}  // namespace petal::ops
