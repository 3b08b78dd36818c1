// BatchNormalization ops over the last (channel) axis (see ops_conv.hpp and,
// for the dispatch, ops_conv_common.hpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/conv/batch_norm.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"
#include "kernels/derived_cache.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"
#include "kernels/ops_conv_common.hpp"

namespace petal::ops {

using namespace detail;

Tensor batch_norm_training(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double epsilon,
                           bool relu6, Tensor& mean, Tensor& biased_variance) {
  const char* op = "batch_norm";
  const std::int64_t c = check_channels_last(x_in, op);
  check_channel_vector(gamma_in, x_in, c, op, "gamma");
  check_channel_vector(beta_in, x_in, c, op, "beta");
  PETAL_CHECK(epsilon > 0.0, ValueError, op, ": epsilon must be positive, got ", epsilon);
  if (on_cuda(op, {&x_in, &gamma_in, &beta_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::batch_norm_training(x_in, gamma_in, beta_in, epsilon, relu6, mean,
                                                           biased_variance));
  const Tensor x = x_in.contiguous(), gamma = gamma_in.contiguous(), beta = beta_in.contiguous();
  const std::int64_t rows = x.numel() / c;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  mean = Tensor::empty({c}, x.dtype());
  biased_variance = Tensor::empty({c}, x.dtype());
  run_fast_or_reference(
      x.dtype(),
      [&] {
        cpu::batch_norm_training_forward(x.data<float>(), rows, c, gamma.data<float>(), beta.data<float>(), epsilon,
                                         relu6, y.data<float>(), mean.data<float>(), biased_variance.data<float>());
      },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_batch_norm_training(x.data<T>(), gamma.data<T>(), beta.data<T>(), rows, c, epsilon, relu6,
                                           y.data<T>(), mean.data<T>(), biased_variance.data<T>());
      });
  return y;
}

BatchNormGrads batch_norm_backward(const Tensor& grad_in, const Tensor& x_in, const Tensor& gamma_in,
                                   const Tensor& beta_in, const Tensor& mean_in, const Tensor& var_in, double epsilon,
                                   bool relu6) {
  const char* op = "batch_norm_backward";
  const std::int64_t c = check_channels_last(x_in, op);
  check_floating(op, grad_in, "gradient");
  check_same_dtype(op, x_in, grad_in, "gradient");
  PETAL_CHECK(grad_in.shape() == x_in.shape(), ShapeError, op, ": gradient ", shape_str(grad_in.shape()),
              " does not match the input ", shape_str(x_in.shape()));
  check_channel_vector(gamma_in, x_in, c, op, "gamma");
  check_channel_vector(beta_in, x_in, c, op, "beta");
  check_channel_vector(mean_in, x_in, c, op, "mean");
  check_channel_vector(var_in, x_in, c, op, "variance");
  if (on_cuda(op, {&grad_in, &x_in, &gamma_in, &beta_in, &mean_in, &var_in}))
    PETAL_CUDA_BRANCH(
        return cuda_ops::batch_norm_backward(grad_in, x_in, gamma_in, beta_in, mean_in, var_in, epsilon, relu6));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous(), gamma = gamma_in.contiguous(),
               beta = beta_in.contiguous(), mean = mean_in.contiguous(), var = var_in.contiguous();
  const std::int64_t rows = x.numel() / c;
  BatchNormGrads out{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({c}, x.dtype()),
                     Tensor::empty({c}, x.dtype())};
  run_fast_or_reference(
      x.dtype(),
      [&] {
        cpu::batch_norm_backward(grad.data<float>(), x.data<float>(), rows, c, gamma.data<float>(),
                                 beta.data<float>(), mean.data<float>(), var.data<float>(), epsilon, relu6,
                                 out.x.data<float>(), out.gamma.data<float>(), out.beta.data<float>());
      },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_batch_norm_backward(grad.data<T>(), x.data<T>(), gamma.data<T>(), beta.data<T>(),
                                           mean.data<T>(), var.data<T>(), rows, c, epsilon, relu6, out.x.data<T>(),
                                           out.gamma.data<T>(), out.beta.data<T>());
      });
  return out;
}

FoldedBatchNorm fold_batch_norm(const Tensor& gamma_in, const Tensor& beta_in, const Tensor& mean_in,
                                const Tensor& var_in, double epsilon) {
  const char* op = "fold_batch_norm";
  check_floating(op, gamma_in, "gamma");
  PETAL_CHECK(gamma_in.dim() == 1, ShapeError, op, ": gamma must be 1-D, got ", shape_str(gamma_in.shape()));
  const std::int64_t c = gamma_in.size(0);
  check_channel_vector(beta_in, gamma_in, c, op, "beta");
  check_channel_vector(mean_in, gamma_in, c, op, "moving_mean");
  check_channel_vector(var_in, gamma_in, c, op, "moving_variance");
  if (on_cuda(op, {&gamma_in, &beta_in, &mean_in, &var_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::fold_batch_norm(gamma_in, beta_in, mean_in, var_in, epsilon));
  // Inference folds every batch norm on every call, on the calling thread
  // while the others wait, so the fold is kept while the four inputs hold the
  // same bytes (see derived_cache.hpp). float32 takes the per-ISA kernel
  // (vectorised in double), float64 the same formula in a plain loop.
  static DerivedCache<FoldedBatchNorm> cache;
  std::uint64_t epsilon_bits = 0;
  std::memcpy(&epsilon_bits, &epsilon, sizeof(epsilon_bits));
  const FoldedBatchNorm kept = cache.get(
      {&gamma_in, &beta_in, &mean_in, &var_in}, epsilon_bits,
      [&] {
        const Tensor gamma = gamma_in.contiguous(), beta = beta_in.contiguous(), mean = mean_in.contiguous(),
                     var = var_in.contiguous();
        FoldedBatchNorm out{Tensor::empty({c}, gamma.dtype()), Tensor::empty({c}, gamma.dtype())};
        if (gamma.dtype() == DType::Float32) {
          cpu::fold_batch_norm(gamma.data<const float>(), beta.data<const float>(), mean.data<const float>(),
                               var.data<const float>(), c, epsilon, out.scale.data<float>(),
                               out.shift.data<float>());
          return out;
        }
        const double *g = gamma.data<const double>(), *b = beta.data<const double>(),
                     *m = mean.data<const double>(), *v = var.data<const double>();
        double *scale = out.scale.data<double>(), *shift = out.shift.data<double>();
        for (std::int64_t i = 0; i < c; ++i) {
          scale[i] = g[i] / std::sqrt(v[i] + epsilon);
          shift[i] = b[i] - m[i] * scale[i];
        }
        return out;
      });
  // Copies (two small allocations): what the caller does with its result
  // cannot reach the kept one.
  return {kept.scale.clone(), kept.shift.clone()};
}

Tensor channel_affine(const Tensor& x_in, const Tensor& scale_in, const Tensor& shift_in, bool relu6) {
  const char* op = "channel_affine";
  const std::int64_t c = check_channels_last(x_in, op);
  check_channel_vector(scale_in, x_in, c, op, "scale");
  check_channel_vector(shift_in, x_in, c, op, "shift");
  if (on_cuda(op, {&x_in, &scale_in, &shift_in}))
    PETAL_CUDA_BRANCH(return cuda_ops::channel_affine(x_in, scale_in, shift_in, relu6));
  const Tensor x = x_in.contiguous(), scale = scale_in.contiguous(), shift = shift_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const std::int64_t rows = x.numel() / c;
  run_fast_or_reference(
      x.dtype(),
      [&] {
        cpu::channel_affine(x.data<float>(), rows, c, scale.data<float>(), shift.data<float>(), relu6,
                            y.data<float>());
      },
      [&](auto tag) {
        // The plain loop: y = relu6?(x * scale + shift).
        using T = decltype(tag);
        const T *px = x.data<T>(), *ps = scale.data<T>(), *pt = shift.data<T>();
        T* py = y.data<T>();
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t j = 0; j < c; ++j) {
            const T v = px[r * c + j] * ps[j] + pt[j];
            py[r * c + j] = relu6 ? std::min(std::max(v, T(0)), T(6)) : v;
          }
      });
  return y;
}

Tensor channel_affine_backward(const Tensor& grad_in, const Tensor& y_in, const Tensor& scale_in, bool relu6) {
  const char* op = "channel_affine_backward";
  const std::int64_t c = check_channels_last(y_in, op);
  PETAL_CHECK(grad_in.shape() == y_in.shape(), ShapeError, op, ": gradient ", shape_str(grad_in.shape()),
              " does not match the output ", shape_str(y_in.shape()));
  check_channel_vector(scale_in, y_in, c, op, "scale");
  // Without ReLU6 it is one multiplication; elsewhere than float32 on the
  // CPU the two ops compose it.
  if (!relu6 || y_in.dtype() != DType::Float32 || on_cuda(op, {&grad_in, &y_in, &scale_in}))
    return mul(relu6 ? relu6_backward(grad_in, y_in) : grad_in, scale_in);
  const Tensor grad = grad_in.contiguous(), y = y_in.contiguous(), scale = scale_in.contiguous();
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  cpu::channel_scale_backward(grad.data<float>(), y.data<float>(), y.numel() / c, c, scale.data<float>(), relu6,
                              dx.data<float>());
  return dx;
}

void update_moving_statistics(Tensor& moving_mean, Tensor& moving_variance, const Tensor& batch_mean,
                              const Tensor& batch_biased_variance, std::int64_t count, double momentum) {
  const char* op = "batch_norm (moving statistics)";
  check_floating(op, moving_mean, "moving_mean");
  check_floating(op, moving_variance, "moving_variance");
  const std::int64_t c = batch_mean.numel();
  PETAL_CHECK(moving_mean.numel() == c && moving_variance.numel() == c && batch_biased_variance.numel() == c,
              ShapeError, op, ": moving_mean ", shape_str(moving_mean.shape()), " and moving_variance ",
              shape_str(moving_variance.shape()), " must have ", c, " elements");
  PETAL_CHECK(moving_mean.is_contiguous() && moving_variance.is_contiguous(), ValueError, op,
              ": moving statistics must be contiguous tensors (they are updated in place)");
  if (on_cuda(op, {&moving_mean, &moving_variance}))
    PETAL_CUDA_BRANCH(return cuda_ops::update_moving_statistics(moving_mean, moving_variance, batch_mean,
                                                                batch_biased_variance, count, momentum));
  const std::vector<double> mean = batch_mean.to_vector<double>(), var = batch_biased_variance.to_vector<double>();
  const double unbias = count > 1 ? double(count) / double(count - 1) : 1.0;
  auto update = [&](Tensor& t, const std::vector<double>& batch, double factor) {
    kernels::dispatch_floating(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* p = t.data<T>();
      for (std::int64_t i = 0; i < c; ++i)
        p[i] = T(double(p[i]) * momentum + batch[static_cast<std::size_t>(i)] * factor * (1.0 - momentum));
    });
  };
  update(moving_mean, mean, 1.0);
  update(moving_variance, var, unbias);
}

}  // namespace petal::ops
