// Differentiable convolution-family operations (NHWC activations, HWIO conv
// kernels, depthwise kernels [kh, kw, C, depth_multiplier]), with TensorFlow's
// padding rules: "same" pads total = max((out-1)*stride + k - in, 0), the
// smaller half before and the larger half after; "valid" pads nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/variable.hpp"
#include "core/random.hpp"
#include "kernels/ops_conv.hpp"

namespace petal::ag {

// The padding rule is the kernels' own (ops::ConvPadding::Same / Valid).
using Padding = ops::ConvPadding;

struct Conv2dOptions {
  std::int64_t stride_h = 1, stride_w = 1;
  Padding padding = Padding::Valid;
};

// x [N, H, W, Cin], kernel [kh, kw, Cin, Cout], bias [Cout] or undefined.
Variable conv2d(const Variable& x, const Variable& kernel, const Variable& bias, const Conv2dOptions& options);
// x [N, H, W, C], kernel [kh, kw, C, M], bias [C*M] or undefined; output C*M channels.
Variable depthwise_conv2d(const Variable& x, const Variable& kernel, const Variable& bias,
                          const Conv2dOptions& options);

// Batch normalisation over the last (channel) axis of x [..., C].
// training: normalises with the batch mean and biased variance and updates the
// moving statistics in place: moving = moving * momentum + batch * (1 - momentum),
// with the unbiased variance (n / (n - 1)) for moving_variance.
// inference: uses the moving statistics (a per-channel affine map).
struct BatchNormOptions {
  bool training = false;
  double momentum = 0.99;
  double epsilon = 1e-3;
};
Variable batch_norm(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                    Tensor& moving_variance, const BatchNormOptions& options);
// batch_norm followed by min(max(y, 0), 6), fused (one or two passes forward and backward).
Variable batch_norm_relu6(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                          Tensor& moving_variance, const BatchNormOptions& options);

// The activation a fused batch-norm op applies to its output: none, ReLU
// (max(y, 0)) or ReLU6 (min(max(y, 0), 6)). ReLU6 runs inside the kernels;
// ReLU as one more pass inside the same op (no tape node of its own).
enum class BatchNormActivation { None, Relu, Relu6 };
const char* activation_name(BatchNormActivation activation);  // "none", "relu", "relu6"

// The general form of batch_norm / batch_norm_relu6: the normalisation of
// x + input_bias followed by the activation, one op. input_bias ([C] or
// undefined) is the bias of the layer that made x (a convolution or a dense
// layer without its own activation): training normalises with the batch
// statistics, which a per-channel bias cannot change, so the bias only moves
// the batch mean that updates moving_mean (its gradient is exactly zero);
// inference folds it into the shift, y = (x + bias - mean) * scale + beta
// (its gradient is that of the shift, summed). Equals adding the bias first.
Variable batch_norm_activation(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                               Tensor& moving_variance, const BatchNormOptions& options,
                               BatchNormActivation activation, const Variable& input_bias = Variable());

// A convolution without bias (conv2d or depthwise_conv2d) followed by
// batch_norm, or batch_norm_relu6 when relu6, recorded as one op with the same
// values and gradients as the sequence. Training gathers the batch statistics
// while the convolution writes its output (one pass over memory fewer);
// inference without gradients runs the one-pass folded kernel.
enum class ConvKind { Conv2d, Depthwise };
Variable conv_batch_norm(ConvKind kind, const Variable& x, const Variable& kernel, const Variable& gamma,
                         const Variable& beta, Tensor& moving_mean, Tensor& moving_variance,
                         const Conv2dOptions& conv_options, const BatchNormOptions& bn_options, bool relu6);
// The general form: the convolution's bias ([Cout] or undefined, handled as
// batch_norm_activation's input_bias: folded into the shift in inference,
// into the moving mean's update in training) and any BatchNormActivation.
// The form above is this one with no bias and ReLU6 or none.
Variable conv_batch_norm(ConvKind kind, const Variable& x, const Variable& kernel, const Variable& bias,
                         const Variable& gamma, const Variable& beta, Tensor& moving_mean, Tensor& moving_variance,
                         const Conv2dOptions& conv_options, const BatchNormOptions& bn_options,
                         BatchNormActivation activation);

// One stage of inverted_residual: conv_batch_norm's operands (the general
// form), moving statistics by pointer.
struct ConvBatchNormStage {
  ConvKind kind = ConvKind::Conv2d;
  Variable kernel, bias;  // bias may be undefined
  Variable gamma, beta;
  Tensor* moving_mean = nullptr;
  Tensor* moving_variance = nullptr;
  Conv2dOptions conv;
  BatchNormOptions bn;
  BatchNormActivation activation = BatchNormActivation::None;
};
// MobileNetV2's inverted-residual block: the stages one after the other
// (expand, depthwise, project; or depthwise, project), each conv_batch_norm,
// then + x when residual. With every batch norm in inference mode, no
// operand needing a gradient and no activation but ReLU6 or none, it is one
// op without a tape node (ops::inverted_residual_inference: on the CPU one
// pass per band of rows, the expanded tensor never written out); otherwise
// the conv_batch_norm ops and an add, with their gradients. The same values
// either way up to float rounding.
Variable inverted_residual(const Variable& x, const std::vector<ConvBatchNormStage>& stages, bool residual);

Variable zero_pad2d(const Variable& x, std::int64_t top, std::int64_t bottom, std::int64_t left,
                    std::int64_t right);
Variable global_average_pool2d(const Variable& x);  // [N, H, W, C] -> [N, C]
Variable average_pool2d(const Variable& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dOptions& options);
Variable max_pool2d(const Variable& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dOptions& options);
// Inverted dropout: in training zeroes each element with probability rate and
// scales the rest by 1 / (1 - rate); identity otherwise.
Variable dropout(const Variable& x, double rate, bool training, Generator& gen = default_generator());

// Output size along one spatial axis (TensorFlow rule) and the "same"
// padding before it: the kernels' functions (kernels/ops_conv.hpp).
using ops::conv_output_size;
using ops::same_padding_before;

}  // namespace petal::ag
