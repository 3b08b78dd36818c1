// Tensor-level convolution-family ops (NHWC activations, HWIO conv kernels,
// depthwise kernels [kh, kw, C, multiplier]). Each checks its arguments and
// throws petal::ShapeError / DTypeError / DeviceError naming the op and the
// shapes, then runs the float32 kernels of kernels/cpu/conv (threaded, ISA
// dispatched) or, for float64 (gradient checks), the plain reference loops.
// Results are new contiguous tensors; inputs may be strided views.
#pragma once

#include <cstdint>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "kernels/portable/conv_results.hpp"

namespace petal::ops {

enum class ConvPadding { Same, Valid };

// Stride and explicit padding of a convolution or pooling window.
struct Conv2dWindow {
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

// Output size along one axis under TensorFlow's rule: "same" gives
// ceil(in / stride), "valid" (in - k) / stride + 1; throws ShapeError naming
// op when in, k or stride is not positive or a valid window does not fit.
std::int64_t conv_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, ConvPadding padding,
                              const char* op);
// "same" padding before along one axis: the smaller half of
// max((out - 1) * stride + k - in, 0).
std::int64_t same_padding_before(std::int64_t in, std::int64_t k, std::int64_t stride);
// The window for an [in_h, in_w] input and a k_h x k_w kernel.
Conv2dWindow conv2d_window(std::int64_t in_h, std::int64_t in_w, std::int64_t k_h, std::int64_t k_w,
                           std::int64_t stride_h, std::int64_t stride_w, ConvPadding padding, const char* op);

// ---- Conv2D ----
// x [N, H, W, Cin], kernel [kh, kw, Cin, Cout], bias [Cout] or undefined;
// the result is clamped to [0, 6] when relu6.
Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv2dWindow& window,
              bool relu6 = false);
Tensor conv2d_backward_input(const Tensor& grad, const Tensor& kernel, const Shape& input_shape,
                             const Conv2dWindow& window);
// The kernel gradient; when grad_bias is not null it receives the bias gradient [Cout].
Tensor conv2d_backward_kernel(const Tensor& grad, const Tensor& x, const Shape& kernel_shape,
                              const Conv2dWindow& window, Tensor* grad_bias = nullptr);

// ---- DepthwiseConv2D ----
// x [N, H, W, C], kernel [kh, kw, C, M], bias [C*M] or undefined.
Tensor depthwise_conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv2dWindow& window,
                        bool relu6 = false);
Tensor depthwise_conv2d_backward_input(const Tensor& grad, const Tensor& kernel, const Shape& input_shape,
                                       const Conv2dWindow& window);
Tensor depthwise_conv2d_backward_kernel(const Tensor& grad, const Tensor& x, const Shape& kernel_shape,
                                        const Conv2dWindow& window, Tensor* grad_bias = nullptr);

// ---- BatchNormalization over the last axis of x [..., C] ----
// Training: normalises with the batch statistics; mean and biased_variance
// ([C], same dtype) receive them. relu6 fuses min(max(y, 0), 6).
Tensor batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6,
                           Tensor& mean, Tensor& biased_variance);
// Gradients of batch_norm_training (mean/biased_variance as it returned them).
BatchNormGrads batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& mean, const Tensor& biased_variance, double epsilon, bool relu6);
// Inference: the moving statistics folded into a per-channel scale and shift:
// scale = gamma / sqrt(var + eps), shift = beta - mean * scale (FoldedBatchNorm,
// like BatchNormGrads and ConvBatchNormResult, is in kernels/portable/conv_results.hpp).
// On the CPU the fold is kept while the inputs hold the same bytes
// (kernels/derived_cache.hpp); each call returns its own copy.
FoldedBatchNorm fold_batch_norm(const Tensor& gamma, const Tensor& beta, const Tensor& moving_mean,
                                const Tensor& moving_variance, double epsilon);
// y = x * scale + shift per channel (last axis), clamped when relu6.
Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, bool relu6);
// Gradient through y = relu6?(x * scale + shift) given its output y:
// grad * scale per channel, and 0 where not 0 < y < 6 when relu6 (one pass).
Tensor channel_affine_backward(const Tensor& grad, const Tensor& y, const Tensor& scale, bool relu6);
// Moving-average update in place: moving = moving * momentum + batch * (1 - momentum),
// with the unbiased variance (count / (count - 1)) for the moving variance.
void update_moving_statistics(Tensor& moving_mean, Tensor& moving_variance, const Tensor& batch_mean,
                              const Tensor& batch_biased_variance, std::int64_t count, double momentum);

// ---- inference fusion: convolution + folded batch norm (+ ReLU6), one pass ----
// conv(x, kernel * scale) + (bias * scale + shift) (bias may be undefined),
// clamped to [0, 6] when relu6. No autograd; float32 and float64.
Tensor conv2d_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn,
                                 const Conv2dWindow& window, bool relu6 = true);
Tensor depthwise_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                    const FoldedBatchNorm& bn, const Conv2dWindow& window, bool relu6 = true);

// ---- inference fusion: an inverted-residual block (MobileNetV2) ----
// One convolution of a block with its folded batch norm, as
// conv2d_bn_relu6_inference / depthwise_bn_relu6_inference take them.
struct FoldedConvStage {
  Tensor kernel, bias;  // bias may be undefined
  FoldedBatchNorm bn;
  Conv2dWindow window;
  bool relu6 = false;
};
// project(depthwise(expand(x))) (+ x when residual), each stage as the
// inference ops above run it; expand may be null (no expansion). float32
// CPU tensors of the block's own shape (1x1 expand and project kernels,
// stride 1, unpadded; a 3x3 depthwise kernel of multiplier 1 with equal
// strides 1 or 2; no ReLU6 on the projection) run in one pass per band of
// rows with the expanded tensor kept in cache (kernels/cpu/conv/
// inverted_residual.hpp); anything else runs the stages one after the other.
Tensor inverted_residual_inference(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                                   const FoldedConvStage& project, bool residual);
// One stage of a block with its batch norm not folded yet. The tensors are
// the caller's, referenced for the call (copying them allocated two shape
// vectors each: 36 allocations per block and call at batch 1).
struct ConvBatchNormStageInputs {
  const Tensor* kernel = nullptr;
  const Tensor* bias = nullptr;  // null or undefined: no bias
  const Tensor *gamma = nullptr, *beta = nullptr, *moving_mean = nullptr, *moving_variance = nullptr;
  double epsilon = 1e-3;
  Conv2dWindow window;
  bool relu6 = false;
};
// The same block from unfolded stages (2: depthwise, project; 3: expand
// first): each batch norm is folded (fold_batch_norm), then as above. While
// every tensor of the stages is declared constant (ops_constant.hpp, as
// nn::ConstantWeights declares a model's weights), the folded and prepared
// block is kept and a call only allocates its output and runs the kernel:
// at batch 1 the folds, lookups and copies of each call took 20-25 us per
// block on the calling thread while the others waited.
Tensor inverted_residual_inference(const Tensor& x, const std::vector<ConvBatchNormStageInputs>& stages,
                                   bool residual);
// Whether inverted_residual_inference takes its one-pass kernel for these
// operands (false: it runs the stages one after the other).
bool inverted_residual_runs_fused(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                                  const FoldedConvStage& project, bool residual);

// ---- training fusion: convolution (no bias) + batch norm (+ ReLU6) ----
// The batch statistics are gathered while the convolution writes its output,
// saving batch norm one pass over memory. conv_out is batch_norm_backward's x.
ConvBatchNormResult conv2d_batch_norm_training(const Tensor& x, const Tensor& kernel, const Conv2dWindow& window,
                                               const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6);
ConvBatchNormResult depthwise_conv2d_batch_norm_training(const Tensor& x, const Tensor& kernel,
                                                         const Conv2dWindow& window, const Tensor& gamma,
                                                         const Tensor& beta, double epsilon, bool relu6);

// ---- padding and pooling (x [N, H, W, C]) ----
Tensor zero_pad2d(const Tensor& x, std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right);
Tensor zero_pad2d_backward(const Tensor& grad, std::int64_t top, std::int64_t bottom, std::int64_t left,
                           std::int64_t right);
// [N, H, W, C] -> [N, C]
Tensor global_average_pool2d(const Tensor& x);
Tensor global_average_pool2d_backward(const Tensor& grad, const Shape& input_shape);
// Averages count only in-bounds elements (TensorFlow); max ignores padding.
Tensor average_pool2d(const Tensor& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window);
Tensor average_pool2d_backward(const Tensor& grad, const Shape& input_shape, std::int64_t pool_h,
                               std::int64_t pool_w, const Conv2dWindow& window);
Tensor max_pool2d(const Tensor& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window);
// The gradient goes to the first maximum of each window.
Tensor max_pool2d_backward(const Tensor& grad, const Tensor& x, std::int64_t pool_h, std::int64_t pool_w,
                           const Conv2dWindow& window);

// Inverted-dropout mask of the given shape: 0 with probability rate, else 1 / (1 - rate).
Tensor dropout_mask(const Shape& shape, double rate, Generator& gen, DType dtype = DType::Float32);

}  // namespace petal::ops
