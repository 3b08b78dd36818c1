// DepthwiseConv2D ops (see ops_conv.hpp and, for the dispatch, ops_conv_common.hpp).
#include <algorithm>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/conv/depthwise_conv.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"
#include "kernels/ops_conv.hpp"
#include "kernels/ops_conv_common.hpp"

namespace petal::ops {

using namespace detail;

namespace {

// A depth multiplier M > 1 runs on the multiplier-1 kernels: output channel
// c * M + m reads input channel c, so the input with every channel repeated M
// times is a multiplier-1 problem over C * M channels, and the [kh, kw, C, M]
// kernel already is [kh, kw, C * M, 1] in memory.
bool has_multiplier(const ConvGeometry& g) { return g.out_c != g.in_c; }

ConvGeometry as_multiplier_one(ConvGeometry g) {
  g.in_c = g.out_c;
  return g;
}

// Pixels per thread chunk of the channel repeats below (about 16K channels).
std::int64_t repeat_grain(std::int64_t channels) { return std::max<std::int64_t>(1, 16384 / channels); }

// x [pixels, C] -> [pixels, C * M], each channel repeated M times.
Tensor repeat_channels(const Tensor& x, std::int64_t m) {
  Shape shape = x.shape();
  const std::int64_t c = shape.back();
  shape.back() = c * m;
  Tensor out = Tensor::empty(shape, DType::Float32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  const std::int64_t pixels = x.numel() / c;
  parallel_for(0, pixels, repeat_grain(c * m), [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p)
      for (std::int64_t ch = 0; ch < c; ++ch) std::fill_n(dst + (p * c + ch) * m, m, src[p * c + ch]);
  });
  return out;
}

// The reverse for gradients: dst [pixels, C] = sums of each group of M channels of src [pixels, C * M].
void sum_channel_groups(const float* src, float* dst, std::int64_t pixels, std::int64_t c, std::int64_t m) {
  parallel_for(0, pixels, repeat_grain(c * m), [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p)
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const float* group = src + (p * c + ch) * m;
        float sum = 0.0f;
        for (std::int64_t i = 0; i < m; ++i) sum += group[i];
        dst[p * c + ch] = sum;
      }
  });
}

}  // namespace

Tensor depthwise_conv2d(const Tensor& x_in, const Tensor& kernel_in, const Tensor& bias_in,
                        const Conv2dWindow& window, bool relu6) {
  const char* op = "depthwise_conv2d";
  const ConvGeometry g = checked_conv_geometry(x_in, kernel_in, bias_in, window, true, op);
  if (on_cuda(op, {&x_in, &kernel_in, &bias_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_conv2d(x_in, kernel_in, bias_in, g, relu6));
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous(), bias = contiguous_if_defined(bias_in);
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  run_fast_or_reference(
      x.dtype(),
      [&] {
        const Tensor input = has_multiplier(g) ? repeat_channels(x, g.out_c / g.in_c) : x;
        cpu::depthwise_forward(input.data<float>(), kernel.data<float>(), data_or_null<float>(bias), y.data<float>(),
                               as_multiplier_one(g), relu6);
      },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_depthwise_forward(x.data<T>(), kernel.data<T>(), data_or_null<T>(bias), y.data<T>(), g);
        if (relu6) clamp_relu6_in_place<T>(y);
      },
      cpu::depthwise_fast_path(g));
  return y;
}

Tensor depthwise_conv2d_backward_input(const Tensor& grad_in, const Tensor& kernel_in, const Shape& input_shape,
                                       const Conv2dWindow& window) {
  const char* op = "depthwise_conv2d_backward_input";
  const ConvGeometry g = input_grad_geometry(grad_in, kernel_in, input_shape, window, true, op);
  if (on_cuda(op, {&grad_in, &kernel_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_conv2d_backward_input(grad_in, kernel_in, g));
  const Tensor grad = grad_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype());
  run_fast_or_reference(
      grad.dtype(),
      [&] {
        if (!has_multiplier(g)) {
          cpu::depthwise_backward_input(grad.data<float>(), kernel.data<float>(), dx.data<float>(), g);
          return;
        }
        Tensor dx_repeated = Tensor::empty({g.batch, g.in_h, g.in_w, g.out_c}, DType::Float32);
        cpu::depthwise_backward_input(grad.data<float>(), kernel.data<float>(), dx_repeated.data<float>(),
                                      as_multiplier_one(g));
        sum_channel_groups(dx_repeated.data<float>(), dx.data<float>(), g.input_pixels(), g.in_c, g.out_c / g.in_c);
      },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_depthwise_backward_input(grad.data<T>(), kernel.data<T>(), dx.data<T>(), g);
      },
      cpu::depthwise_fast_path(g));
  return dx;
}

Tensor depthwise_conv2d_backward_kernel(const Tensor& grad_in, const Tensor& x_in, const Shape& kernel_shape,
                                        const Conv2dWindow& window, Tensor* grad_bias) {
  const char* op = "depthwise_conv2d_backward_kernel";
  const ConvGeometry g = kernel_grad_geometry(grad_in, x_in, kernel_shape, window, true, op);
  if (on_cuda(op, {&grad_in, &x_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_conv2d_backward_kernel(grad_in, x_in, kernel_shape, g, grad_bias));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  return kernel_grad_cpu(
      grad, x.dtype(), kernel_shape, g, grad_bias,
      [&](Tensor& dw, float* db) {
        const Tensor input = has_multiplier(g) ? repeat_channels(x, g.out_c / g.in_c) : x;
        cpu::depthwise_backward_kernel(grad.data<float>(), input.data<float>(), dw.data<float>(), db,
                                       as_multiplier_one(g));
      },
      [&](auto tag, Tensor& dw) {
        using T = decltype(tag);
        cpu::reference_depthwise_backward_kernel(grad.data<T>(), x.data<T>(), dw.data<T>(), g);
      },
      cpu::depthwise_fast_path(g));
}

Tensor depthwise_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                    const FoldedBatchNorm& bn, const Conv2dWindow& window, bool relu6) {
  const char* op = "depthwise_bn_relu6_inference";
  check_nhwc(x, op);
  const std::int64_t out_c = check_kernel(x, kernel, bias, true, op);
  if (on_cuda(op, {&x, &kernel, &bias, &bn.scale, &bn.shift})) {
    check_folded_batch_norm(bn, kernel, out_c, op);
    [[maybe_unused]] ConvGeometry g = make_geometry(x.shape(), kernel.size(0), kernel.size(1), window, op);
    g.out_c = out_c;
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_bn_relu6_inference(x, kernel, bias, bn, g, relu6));
  }
  const FoldedConv folded = fold_into_kernel(kernel, bias, bn, out_c, op);
  return depthwise_conv2d(x, folded.kernel, folded.bias, window, relu6);
}

}  // namespace petal::ops
