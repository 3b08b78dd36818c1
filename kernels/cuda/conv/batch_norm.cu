// Batch normalization on CUDA over x [rows, C] (channels innermost).
// Training: one deterministic column reduction of (x, x^2) in double, a
// per-channel kernel for mean, variance and 1/std, one elementwise pass with
// ReLU6 fused. Depthwise and direct (stem) convolutions followed by batch
// norm in training write their output inside that reduction (conv_bn_body.hpp). Backward: 1/std per channel, one reduction for
// (sum g, sum g * xhat) with the ReLU6 mask, one elementwise pass for dx.
// The elementwise passes use 32-bit indices when the tensor allows. Inference: the moving
// statistics are folded into the kernel's output channels and the bias, and
// the convolution's epilogue applies ReLU6. See batch_norm_body.hpp.
#include "kernels/cuda/conv/batch_norm_body.hpp"
#include "kernels/cuda/conv/conv_bn_body.hpp"
#include "kernels/cuda/conv/conv_launch.cuh"
#include "kernels/cuda/cuda_conv_ops.hpp"

namespace petal::cuda_conv {

namespace body = cuda_body;

template <class T, class I>
void launch_normalise(const T* x, const T* gamma, const T* beta, const body::MeanInvStd* stats, I c, bool relu6, T* y,
                      std::int64_t total, const OpName& name) {
  for_each_index(
      total,
      [=] __device__(std::int64_t i) {
        const I j = I(i) % c;
        y[i] = body::batch_norm_element(x[i], stats[j].mean, stats[j].inv_std, gamma[j], beta[j], relu6);
      },
      name, "normalise");
}

// Mean, variance and 1/std from the per-channel (sum x, sum x^2), then y.
template <class T>
void batch_norm_from_moments(const Sum2* m, const T* x, const T* gamma, const T* beta, std::int64_t rows,
                             std::int64_t c, double epsilon, bool relu6, T* y, T* mean, T* variance, Device device,
                             const OpName& name) {
  static_assert(sizeof(body::MeanInvStd) == 2 * sizeof(double));
  const Tensor stats_buffer = workspace<double>(2 * c, device);
  body::MeanInvStd* stats = reinterpret_cast<body::MeanInvStd*>(stats_buffer.data<double>());
  for_each_index(
      c,
      [=] __device__(std::int64_t j) {
        const body::ChannelStats s = body::channel_stats(m[j], rows);
        mean[j] = T(s.mean);
        variance[j] = T(s.biased_variance);
        stats[j] = body::mean_inv_std(s.mean, s.biased_variance, epsilon);
      },
      name, "statistics");
  if (rows * c < (std::int64_t{1} << 31)) {
    launch_normalise(x, gamma, beta, stats, std::int32_t(c), relu6, y, rows * c, name);
  } else {
    launch_normalise(x, gamma, beta, stats, c, relu6, y, rows * c, name);
  }
}

template <class T>
void batch_norm_forward(const T* x, const T* gamma, const T* beta, std::int64_t rows, std::int64_t c, double epsilon,
                        bool relu6, T* y, T* mean, T* variance, Device device, const OpName& name) {
  const ColumnSums moments = column_reduce(body::ChannelMomentsTerm<T>{x, c}, rows, c, device, name, "statistics");
  batch_norm_from_moments(moments.sums, x, gamma, beta, rows, c, epsilon, relu6, y, mean, variance, device, name);
}

// Depthwise or direct convolution whose output is written by the reduction
// that gathers its moments (conv_bn_body.hpp), then batch norm.
template <class T, class G>
ColumnSums conv_output_moments(const T* x, const T* w, T* conv_out, const G& g, bool depthwise, Device device,
                               const OpName& name) {
  const std::int64_t rows = std::int64_t(g.batch) * g.out_h * g.out_w, c = g.out_c;
  if (depthwise)
    return column_reduce(body::ConvOutputMomentsTerm<T, G, true>{x, w, conv_out, g}, rows, c, device, name,
                         "depthwise + statistics");
  return column_reduce(body::ConvOutputMomentsTerm<T, G, false>{x, w, conv_out, g}, rows, c, device, name,
                       "convolution + statistics");
}

template <class T>
void fused_conv_batch_norm(const T* x, const T* w, const T* gamma, const T* beta, const ConvGeometry& g,
                           double epsilon, bool relu6, bool depthwise, T* conv_out, T* y, T* mean, T* variance,
                           Device device, const OpName& name) {
  const bool unit = depthwise && g.out_c == g.in_c;  // the multiplier-1 fast path
  const ColumnSums moments =
      body::fits_32bit(g)
          ? (unit ? conv_output_moments(x, w, conv_out, body::unit_multiplier(body::narrow(g)), true, device, name)
                  : conv_output_moments(x, w, conv_out, body::narrow(g), depthwise, device, name))
          : (unit ? conv_output_moments(x, w, conv_out, body::unit_multiplier(g), true, device, name)
                  : conv_output_moments(x, w, conv_out, g, depthwise, device, name));
  batch_norm_from_moments(moments.sums, conv_out, gamma, beta, g.output_pixels(), g.out_c, epsilon, relu6, y, mean,
                          variance, device, name);
}

template <class T, class I>
void launch_input_grad(const T* dy, const T* x, const T* gamma, const T* beta, const body::MeanInvStd* stats,
                       const Sum2* sums, I c, std::int64_t rows, bool relu6, T* dx, const OpName& name) {
  for_each_index(
      rows * c,
      [=] __device__(std::int64_t i) {
        const I j = I(i) % c;
        dx[i] = body::batch_norm_input_grad(dy[i], x[i], gamma[j], beta[j], stats[j], relu6, sums[j], rows);
      },
      name, "input gradient");
}

template <class T>
void batch_norm_backward(const T* dy, const T* x, const T* gamma, const T* beta, const T* mean, const T* variance,
                         std::int64_t rows, std::int64_t c, double epsilon, bool relu6, T* dx, T* dgamma, T* dbeta,
                         Device device, const OpName& name) {
  const Tensor stats_buffer = workspace<double>(2 * c, device);
  body::MeanInvStd* stats = reinterpret_cast<body::MeanInvStd*>(stats_buffer.data<double>());
  for_each_index(
      c, [=] __device__(std::int64_t j) { stats[j] = body::mean_inv_std(mean[j], variance[j], epsilon); }, name,
      "statistics");
  const ColumnSums sums = column_reduce(body::BatchNormBackwardTerm<T>{dy, x, gamma, beta, stats, c, relu6}, rows, c,
                                        device, name, "gradient sums");
  const Sum2* s = sums.sums;
  for_each_index(
      c,
      [=] __device__(std::int64_t j) {
        dgamma[j] = T(s[j].second);
        dbeta[j] = T(s[j].first);
      },
      name, "gamma/beta gradients");
  if (rows * c < (std::int64_t{1} << 31)) {
    launch_input_grad(dy, x, gamma, beta, stats, s, std::int32_t(c), rows, relu6, dx, name);
  } else {
    launch_input_grad(dy, x, gamma, beta, stats, s, c, rows, relu6, dx, name);
  }
}

template <class T>
void fold(const T* gamma, const T* beta, const T* mean, const T* variance, std::int64_t c, double epsilon, T* scale,
          T* shift, const OpName& name) {
  for_each_index(
      c,
      [=] __device__(std::int64_t j) {
        const body::FoldedChannel f = body::fold_channel(gamma[j], beta[j], mean[j], variance[j], epsilon);
        scale[j] = T(f.scale);
        shift[j] = T(f.shift);
      },
      name, "fold");
}

template <class T>
void affine(const T* x, const T* scale, const T* shift, std::int64_t n, std::int64_t c, bool relu6, T* y,
            const OpName& name) {
  for_each_index(
      n, [=] __device__(std::int64_t i) { y[i] = body::channel_affine_element(x[i], scale[i % c], shift[i % c], relu6); },
      name, "channel affine");
}

template <class T>
void moving_update(T* moving_mean, T* moving_variance, const T* mean, const T* variance, std::int64_t c,
                   double unbias, double momentum, const OpName& name) {
  for_each_index(
      c,
      [=] __device__(std::int64_t j) {
        moving_mean[j] = T(body::moving_average(moving_mean[j], mean[j], 1.0, momentum));
        moving_variance[j] = T(body::moving_average(moving_variance[j], variance[j], unbias, momentum));
      },
      name, "moving statistics");
}

// kernel [..., out_c] * scale per output channel; bias * scale + shift.
template <class T>
void fold_into_kernel(const T* kernel, const T* bias, const T* scale, const T* shift, std::int64_t kernel_elements,
                      std::int64_t out_c, T* folded_kernel, T* folded_bias, const OpName& name) {
  for_each_index(
      kernel_elements, [=] __device__(std::int64_t i) { folded_kernel[i] = kernel[i] * scale[i % out_c]; }, name,
      "fold kernel");
  for_each_index(
      out_c, [=] __device__(std::int64_t j) { folded_bias[j] = (bias ? bias[j] : T(0)) * scale[j] + shift[j]; }, name,
      "fold bias");
}

struct FoldedConv {
  Tensor kernel, bias;
};

FoldedConv fold_conv(const Tensor& kernel_in, const Tensor& bias_in, const ops::FoldedBatchNorm& bn, std::int64_t out_c,
                     const OpName& name) {
  const Tensor kernel = kernel_in.contiguous(), scale = bn.scale.contiguous(), shift = bn.shift.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  FoldedConv f{Tensor::empty(kernel.shape(), kernel.dtype(), kernel.device()),
               Tensor::empty({out_c}, kernel.dtype(), kernel.device())};
  dispatch_floating(kernel.dtype(), [&](auto tag) {
    using T = decltype(tag);
    fold_into_kernel<T>(kernel.data<T>(), data_or_null<T>(bias), scale.data<T>(), shift.data<T>(), kernel.numel(),
                        out_c, f.kernel.data<T>(), f.bias.data<T>(), name);
  });
  return f;
}

}  // namespace petal::cuda_conv

namespace petal::cuda_ops {

using namespace cuda_conv;

Tensor batch_norm_training(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double epsilon,
                           bool relu6, Tensor& mean, Tensor& biased_variance) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"batch_norm", operands({{"x", &x_in}, {"gamma", &gamma_in}})};
  const Tensor x = x_in.contiguous(), gamma = gamma_in.contiguous(), beta = beta_in.contiguous();
  const std::int64_t c = x.size(-1), rows = x.numel() / c;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  mean = Tensor::empty({c}, x.dtype(), x.device());
  biased_variance = Tensor::empty({c}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    batch_norm_forward<T>(x.data<T>(), gamma.data<T>(), beta.data<T>(), rows, c, epsilon, relu6, y.data<T>(),
                          mean.data<T>(), biased_variance.data<T>(), x.device(), name);
  });
  return y;
}

ops::BatchNormGrads batch_norm_backward(const Tensor& grad_in, const Tensor& x_in, const Tensor& gamma_in,
                                        const Tensor& beta_in, const Tensor& mean_in, const Tensor& var_in,
                                        double epsilon, bool relu6) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"batch_norm_backward", operands({{"gradient", &grad_in}, {"x", &x_in}, {"gamma", &gamma_in}})};
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous(), gamma = gamma_in.contiguous(),
               beta = beta_in.contiguous(), mean = mean_in.contiguous(), var = var_in.contiguous();
  const std::int64_t c = x.size(-1), rows = x.numel() / c;
  ops::BatchNormGrads out{Tensor::empty(x.shape(), x.dtype(), x.device()), Tensor::empty({c}, x.dtype(), x.device()),
                          Tensor::empty({c}, x.dtype(), x.device())};
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda_conv::batch_norm_backward<T>(grad.data<T>(), x.data<T>(), gamma.data<T>(), beta.data<T>(), mean.data<T>(),
                                      var.data<T>(), rows, c, epsilon, relu6, out.x.data<T>(), out.gamma.data<T>(),
                                      out.beta.data<T>(), x.device(), name);
  });
  return out;
}

ops::FoldedBatchNorm fold_batch_norm(const Tensor& gamma_in, const Tensor& beta_in, const Tensor& mean_in,
                                     const Tensor& var_in, double epsilon) {
  const cuda::DeviceGuard guard(gamma_in.device());
  const OpName name{"fold_batch_norm", operands({{"gamma", &gamma_in}})};
  const Tensor gamma = gamma_in.contiguous(), beta = beta_in.contiguous(), mean = mean_in.contiguous(),
               var = var_in.contiguous();
  const std::int64_t c = gamma.numel();
  ops::FoldedBatchNorm out{Tensor::empty({c}, gamma.dtype(), gamma.device()),
                           Tensor::empty({c}, gamma.dtype(), gamma.device())};
  dispatch_floating(gamma.dtype(), [&](auto tag) {
    using T = decltype(tag);
    fold<T>(gamma.data<T>(), beta.data<T>(), mean.data<T>(), var.data<T>(), c, epsilon, out.scale.data<T>(),
            out.shift.data<T>(), name);
  });
  return out;
}

Tensor channel_affine(const Tensor& x_in, const Tensor& scale_in, const Tensor& shift_in, bool relu6) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"channel_affine", operands({{"x", &x_in}, {"scale", &scale_in}})};
  const Tensor x = x_in.contiguous(), scale = scale_in.contiguous(), shift = shift_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    affine<T>(x.data<T>(), scale.data<T>(), shift.data<T>(), x.numel(), x.size(-1), relu6, y.data<T>(), name);
  });
  return y;
}

void update_moving_statistics(Tensor& moving_mean, Tensor& moving_variance, const Tensor& batch_mean_in,
                              const Tensor& batch_variance_in, std::int64_t count, double momentum) {
  const cuda::DeviceGuard guard(moving_mean.device());
  const OpName name{"batch_norm (moving statistics)", operands({{"moving_mean", &moving_mean}})};
  // The batch statistics may come in another dtype or from the host. A
  // dtype is converted on the host (Tensor::to(DType) is a host op; these
  // are a few floats per channel), then the result moves to the device.
  auto like_moving = [&](const Tensor& t) {
    Tensor r = t;
    if (r.dtype() != moving_mean.dtype()) r = r.to(Device::cpu()).to(moving_mean.dtype());
    if (r.device() != moving_mean.device()) r = r.to(moving_mean.device());
    return r.contiguous();
  };
  const Tensor mean = like_moving(batch_mean_in), var = like_moving(batch_variance_in);
  dispatch_floating(moving_mean.dtype(), [&](auto tag) {
    using T = decltype(tag);
    moving_update<T>(moving_mean.data<T>(), moving_variance.data<T>(), mean.data<T>(), var.data<T>(),
                     moving_mean.numel(), cuda_body::unbiased_factor(count), momentum, name);
  });
}

namespace {

// Both inference fusions: the folded batch norm scales the kernel on the
// device, then the convolution runs with the folded bias.
Tensor folded_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ops::FoldedBatchNorm& bn,
                        const ConvGeometry& g, bool relu6, bool depthwise, const char* op) {
  const cuda::DeviceGuard guard(x.device());
  const OpName name{op, operands({{"x", &x}, {"kernel", &kernel}})};
  const FoldedConv folded = fold_conv(kernel, bias, bn, g.out_c, name);
  return depthwise ? depthwise_conv2d(x, folded.kernel, folded.bias, g, relu6)
                   : conv2d(x, folded.kernel, folded.bias, g, relu6);
}

}  // namespace

Tensor conv2d_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                 const ops::FoldedBatchNorm& bn, const ConvGeometry& g, bool relu6) {
  return folded_inference(x, kernel, bias, bn, g, relu6, false, "conv2d_bn_relu6_inference");
}

Tensor depthwise_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                    const ops::FoldedBatchNorm& bn, const ConvGeometry& g, bool relu6) {
  return folded_inference(x, kernel, bias, bn, g, relu6, true, "depthwise_bn_relu6_inference");
}

ops::ConvBatchNormResult conv_batch_norm_training(const Tensor& x, const Tensor& kernel, const ConvGeometry& g,
                                                  const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6,
                                                  bool depthwise) {
  ops::ConvBatchNormResult r;
  if (!depthwise && !cuda_body::uses_direct_kernel(g)) {  // GEMM convolutions: cuBLAS writes conv_out
    r.conv_out = conv2d(x, kernel, Tensor(), g, false);
    r.y = batch_norm_training(r.conv_out, gamma, beta, epsilon, relu6, r.mean, r.biased_variance);
    return r;
  }
  const cuda::DeviceGuard guard(x.device());
  const OpName name{depthwise ? "depthwise_conv2d_batch_norm_training" : "conv2d_batch_norm_training",
                    operands({{"x", &x}, {"kernel", &kernel}, {"gamma", &gamma}})};
  const Tensor xc = x.contiguous(), w = kernel.contiguous(), gm = gamma.contiguous(), bt = beta.contiguous();
  const Shape out_shape{g.batch, g.out_h, g.out_w, g.out_c};
  r.conv_out = Tensor::empty(out_shape, xc.dtype(), xc.device());
  r.y = Tensor::empty(out_shape, xc.dtype(), xc.device());
  r.mean = Tensor::empty({g.out_c}, xc.dtype(), xc.device());
  r.biased_variance = Tensor::empty({g.out_c}, xc.dtype(), xc.device());
  dispatch_floating(xc.dtype(), [&](auto tag) {
    using T = decltype(tag);
    fused_conv_batch_norm<T>(xc.data<T>(), w.data<T>(), gm.data<T>(), bt.data<T>(), g, epsilon, relu6, depthwise,
                             r.conv_out.data<T>(), r.y.data<T>(), r.mean.data<T>(), r.biased_variance.data<T>(),
                             xc.device(), name);
  });
  return r;
}

}  // namespace petal::cuda_ops
