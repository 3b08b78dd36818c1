// Conv2D ops, the windows every convolution-family op takes, and the
// convolution + batch norm fusions: argument checks, then the CUDA kernels of
// kernels/cuda/conv for CUDA tensors, else the float32 kernels of
// kernels/cpu/conv or the float64 reference loops (ops_conv_common.hpp).
// Depthwise, batch norm and pooling are in ops_depthwise.cpp,
// ops_batch_norm.cpp and ops_pooling.cpp.
#include "kernels/ops_conv.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/cpu/conv/batch_norm.hpp"
#include "kernels/cpu/conv/channel_stats.hpp"
#include "kernels/cpu/conv/depthwise_conv.hpp"
#include "kernels/cpu/conv/gemm_conv.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv_common.hpp"

namespace petal::ops {

using namespace detail;

// ---- windows ----

std::int64_t conv_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, ConvPadding padding,
                              const char* op) {
  PETAL_CHECK(in > 0 && k > 0 && stride > 0, ShapeError, op, ": input size ", in, ", window ", k, " and stride ",
              stride, " must all be positive");
  if (padding == ConvPadding::Same) return (in + stride - 1) / stride;
  PETAL_CHECK(in >= k, ShapeError, op, ": input size ", in, " is smaller than the window ", k,
              " with \"valid\" padding");
  return (in - k) / stride + 1;
}

std::int64_t same_padding_before(std::int64_t in, std::int64_t k, std::int64_t stride) {
  const std::int64_t out = (in + stride - 1) / stride;
  return std::max<std::int64_t>((out - 1) * stride + k - in, 0) / 2;
}

Conv2dWindow conv2d_window(std::int64_t in_h, std::int64_t in_w, std::int64_t k_h, std::int64_t k_w,
                           std::int64_t stride_h, std::int64_t stride_w, ConvPadding padding, const char* op) {
  Conv2dWindow w;
  w.stride_h = stride_h, w.stride_w = stride_w;
  const std::int64_t out_h = conv_output_size(in_h, k_h, stride_h, padding, op);
  const std::int64_t out_w = conv_output_size(in_w, k_w, stride_w, padding, op);
  if (padding == ConvPadding::Same) {
    const std::int64_t total_h = std::max<std::int64_t>((out_h - 1) * stride_h + k_h - in_h, 0);
    const std::int64_t total_w = std::max<std::int64_t>((out_w - 1) * stride_w + k_w - in_w, 0);
    w.pad_top = total_h / 2, w.pad_bottom = total_h - total_h / 2;
    w.pad_left = total_w / 2, w.pad_right = total_w - total_w / 2;
  }
  return w;
}

// ---- Conv2D ----

Tensor conv2d(const Tensor& x_in, const Tensor& kernel_in, const Tensor& bias_in, const Conv2dWindow& window,
              bool relu6) {
  const char* op = "conv2d";
  const ConvGeometry g = checked_conv_geometry(x_in, kernel_in, bias_in, window, false, op);
  if (on_cuda(op, {&x_in, &kernel_in, &bias_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d(x_in, kernel_in, bias_in, g, relu6));
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous(), bias = contiguous_if_defined(bias_in);
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  run_fast_or_reference(
      x.dtype(),
      [&] {
        cpu::conv2d_forward(x.data<float>(), kernel.data<float>(), data_or_null<float>(bias), y.data<float>(), g,
                            relu6);
      },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_conv2d_forward(x.data<T>(), kernel.data<T>(), data_or_null<T>(bias), y.data<T>(), g);
        if (relu6) clamp_relu6_in_place<T>(y);
      });
  return y;
}

Tensor conv2d_backward_input(const Tensor& grad_in, const Tensor& kernel_in, const Shape& input_shape,
                             const Conv2dWindow& window) {
  const char* op = "conv2d_backward_input";
  const ConvGeometry g = input_grad_geometry(grad_in, kernel_in, input_shape, window, false, op);
  if (on_cuda(op, {&grad_in, &kernel_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d_backward_input(grad_in, kernel_in, g));
  const Tensor grad = grad_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype());
  run_fast_or_reference(
      grad.dtype(), [&] { cpu::conv2d_backward_input(grad.data<float>(), kernel.data<float>(), dx.data<float>(), g); },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_conv2d_backward_input(grad.data<T>(), kernel.data<T>(), dx.data<T>(), g);
      });
  return dx;
}

Tensor conv2d_backward_kernel(const Tensor& grad_in, const Tensor& x_in, const Shape& kernel_shape,
                              const Conv2dWindow& window, Tensor* grad_bias) {
  const char* op = "conv2d_backward_kernel";
  const ConvGeometry g = kernel_grad_geometry(grad_in, x_in, kernel_shape, window, false, op);
  if (on_cuda(op, {&grad_in, &x_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d_backward_kernel(grad_in, x_in, kernel_shape, g, grad_bias));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  return kernel_grad_cpu(
      grad, x.dtype(), kernel_shape, g, grad_bias,
      [&](Tensor& dw, float* db) {
        cpu::conv2d_backward_kernel(grad.data<float>(), x.data<float>(), dw.data<float>(), db, g);
      },
      [&](auto tag, Tensor& dw) {
        using T = decltype(tag);
        cpu::reference_conv2d_backward_kernel(grad.data<T>(), x.data<T>(), dw.data<T>(), g);
      });
}

// ---- inference fusion ----

Tensor conv2d_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn,
                                 const Conv2dWindow& window, bool relu6) {
  const char* op = "conv2d_bn_relu6_inference";
  const ConvGeometry g = checked_conv_geometry(x, kernel, bias, window, false, op);
  if (on_cuda(op, {&x, &kernel, &bias, &bn.scale, &bn.shift})) {
    check_folded_batch_norm(bn, kernel, g.out_c, op);
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d_bn_relu6_inference(x, kernel, bias, bn, g, relu6));
  }
  if (x.dtype() == DType::Float32 && !cpu::conv2d_runs_direct(g)) {
    // The GEMM paths scale their output in the epilogue: folding the scale
    // into the kernel instead would copy the whole kernel on every call,
    // which at batch 1 costs as much as the convolution.
    check_folded_batch_norm(bn, kernel, g.out_c, op);
    const Tensor scale = bn.scale.contiguous();
    Tensor shift = bn.shift.contiguous();
    if (bias.defined()) shift = add(mul(bias, scale), shift);
    const Tensor xc = x.contiguous(), kc = kernel.contiguous();
    Tensor y = Tensor::empty(output_shape(g), DType::Float32);
    cpu::conv2d_forward_scaled(xc.data<float>(), kc.data<float>(), scale.data<float>(), shift.data<float>(),
                               y.data<float>(), g, relu6);
    return y;
  }
  const FoldedConv folded = fold_into_kernel(kernel, bias, bn, g.out_c, op);
  return conv2d(x, folded.kernel, folded.bias, window, relu6);
}

// ---- training fusion ----

namespace {

ConvBatchNormResult conv_batch_norm_training(const Tensor& x_in, const Tensor& kernel_in, const Conv2dWindow& window,
                                             const Tensor& gamma_in, const Tensor& beta_in, double epsilon, bool relu6,
                                             bool depthwise, const char* op) {
  const ConvGeometry g = checked_conv_geometry(x_in, kernel_in, Tensor(), window, depthwise, op);
  const std::int64_t out_c = g.out_c;
  const Tensor probe = Tensor::empty({1, 1, 1, out_c}, x_in.dtype());  // checks gamma/beta against out_c
  check_channel_vector(gamma_in, probe, out_c, op, "gamma");
  check_channel_vector(beta_in, probe, out_c, op, "beta");
  PETAL_CHECK(epsilon > 0.0, ValueError, op, ": epsilon must be positive, got ", epsilon);
  if (on_cuda(op, {&x_in, &kernel_in, &gamma_in, &beta_in}))
    PETAL_CUDA_BRANCH(
        return cuda_ops::conv_batch_norm_training(x_in, kernel_in, g, gamma_in, beta_in, epsilon, relu6, depthwise));
  ConvBatchNormResult r;
  const bool fast =
      x_in.dtype() == DType::Float32 && (!depthwise || (cpu::depthwise_fast_path(g) && g.in_c == g.out_c));
  if (!fast) {
    r.conv_out =
        depthwise ? depthwise_conv2d(x_in, kernel_in, Tensor(), window) : conv2d(x_in, kernel_in, Tensor(), window);
    r.y = batch_norm_training(r.conv_out, gamma_in, beta_in, epsilon, relu6, r.mean, r.biased_variance);
    return r;
  }
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous(), gamma = gamma_in.contiguous(),
               beta = beta_in.contiguous();
  r.conv_out = Tensor::empty(output_shape(g), DType::Float32);
  cpu::ChannelStats stats(out_c);
  if (depthwise) {
    cpu::depthwise_forward(x.data<float>(), kernel.data<float>(), nullptr, r.conv_out.data<float>(), g, false, &stats);
  } else {
    cpu::conv2d_forward(x.data<float>(), kernel.data<float>(), nullptr, r.conv_out.data<float>(), g, false, &stats);
  }
  r.mean = Tensor::empty({out_c}, DType::Float32);
  r.biased_variance = Tensor::empty({out_c}, DType::Float32);
  stats.finish(g.output_pixels(), r.mean.data<float>(), r.biased_variance.data<float>());
  r.y = Tensor::empty(output_shape(g), DType::Float32);
  cpu::batch_norm_apply(r.conv_out.data<float>(), g.output_pixels(), out_c, gamma.data<float>(), beta.data<float>(),
                        r.mean.data<float>(), r.biased_variance.data<float>(), epsilon, relu6, r.y.data<float>());
  return r;
}

}  // namespace

ConvBatchNormResult conv2d_batch_norm_training(const Tensor& x, const Tensor& kernel, const Conv2dWindow& window,
                                               const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6) {
  return conv_batch_norm_training(x, kernel, window, gamma, beta, epsilon, relu6, false, "conv2d_batch_norm_training");
}

ConvBatchNormResult depthwise_conv2d_batch_norm_training(const Tensor& x, const Tensor& kernel,
                                                         const Conv2dWindow& window, const Tensor& gamma,
                                                         const Tensor& beta, double epsilon, bool relu6) {
  return conv_batch_norm_training(x, kernel, window, gamma, beta, epsilon, relu6, true,
                                  "depthwise_conv2d_batch_norm_training");
}

}  // namespace petal::ops
