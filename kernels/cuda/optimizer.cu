// Fused optimizer updates: one pass over parameter, gradient and state per
// step, with the per-element formulas of optimizer_body.hpp.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/launch.cuh"

namespace petal::cuda_ops {
namespace {

__global__ void sgd_kernel(float* w, const float* g, float* buf, std::int64_t n, cuda::SgdParams p) {
  PETAL_GRID_STRIDE_LOOP(i, n) {
    float unused = 0;
    cuda::sgd_step(w[i], g[i], buf ? buf[i] : unused, p);
  }
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, std::int64_t n, cuda::AdamParams p) {
  PETAL_GRID_STRIDE_LOOP(i, n) { cuda::adam_step(w[i], g[i], m[i], v[i], p); }
}

__global__ void rmsprop_kernel(float* w, const float* g, float* vel, float* mom, float* avg, std::int64_t n,
                               cuda::RmspropParams p) {
  PETAL_GRID_STRIDE_LOOP(i, n) {
    float unused_mom = 0, unused_avg = 0;
    cuda::rmsprop_step(w[i], g[i], vel[i], mom ? mom[i] : unused_mom, avg ? avg[i] : unused_avg, p);
  }
}

__global__ void adagrad_kernel(float* w, const float* g, float* acc, std::int64_t n, cuda::AdagradParams p) {
  PETAL_GRID_STRIDE_LOOP(i, n) { cuda::adagrad_step(w[i], g[i], acc[i], p); }
}

}  // namespace

void sgd_update_(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const cuda::SgdParams& params) {
  const std::int64_t n = param.numel();
  if (n == 0) return;
  const Tensor g = grad.contiguous();
  cuda::DeviceGuard guard(param.device());
  sgd_kernel<<<cuda::blocks_for(n), 256, 0, cuda::current_stream()>>>(
      param.data<float>(), g.data<float>(), params.use_momentum ? momentum_buf.data<float>() : nullptr, n, params);
  cuda::check_launch(str_cat("sgd_update_ of ", shape_str(param.shape())));
}

void adam_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const cuda::AdamParams& params) {
  const std::int64_t n = param.numel();
  if (n == 0) return;
  const Tensor g = grad.contiguous();
  cuda::DeviceGuard guard(param.device());
  adam_kernel<<<cuda::blocks_for(n), 256, 0, cuda::current_stream()>>>(param.data<float>(), g.data<float>(),
                                                                       m.data<float>(), v.data<float>(), n, params);
  cuda::check_launch(str_cat("adam_update_ of ", shape_str(param.shape())));
}

void rmsprop_update_(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum_buf, Tensor& average_grad,
                     const cuda::RmspropParams& params) {
  const std::int64_t n = param.numel();
  if (n == 0) return;
  const Tensor g = grad.contiguous();
  cuda::DeviceGuard guard(param.device());
  rmsprop_kernel<<<cuda::blocks_for(n), 256, 0, cuda::current_stream()>>>(
      param.data<float>(), g.data<float>(), velocity.data<float>(),
      params.use_momentum ? momentum_buf.data<float>() : nullptr, params.centered ? average_grad.data<float>() : nullptr,
      n, params);
  cuda::check_launch(str_cat("rmsprop_update_ of ", shape_str(param.shape())));
}

void adagrad_update_(Tensor& param, const Tensor& grad, Tensor& accumulator, const cuda::AdagradParams& params) {
  const std::int64_t n = param.numel();
  if (n == 0) return;
  const Tensor g = grad.contiguous();
  cuda::DeviceGuard guard(param.device());
  adagrad_kernel<<<cuda::blocks_for(n), 256, 0, cuda::current_stream()>>>(param.data<float>(), g.data<float>(),
                                                                          accumulator.data<float>(), n, params);
  cuda::check_launch(str_cat("adagrad_update_ of ", shape_str(param.shape())));
}

}  // namespace petal::cuda_ops
