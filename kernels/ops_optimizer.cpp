// Fused optimizer updates (SGD with momentum / Nesterov, Adam, RMSprop,
// Adagrad) and the
// squared norm for clipping. The per-element arithmetic lives in
// kernels/cuda/optimizer_body.hpp, shared with the CUDA kernels; on the CPU
// it runs over the thread pool in the exact float32 operation order of the
// loops nn/optimizers.cpp used to have, so results are bit-identical.
#include <cmath>

#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/optimizer_body.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"

namespace petal::ops {
namespace {

constexpr std::int64_t kGrain = std::int64_t{1} << 15;

// param and each state tensor: float32, contiguous, the parameter's shape;
// grad: float32 of the parameter's shape (any strides).
void check_update_operands(const char* op, const Tensor& param, const Tensor& grad,
                           std::initializer_list<const Tensor*> state) {
  detail::check_defined(op, {&param, &grad});
  for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &grad}) {
    PETAL_CHECK(t->dtype() == DType::Float32, DTypeError, op, ": expected float32, got ", dtype_name(t->dtype()),
                " of shape ", shape_str(t->shape()));
  }
  detail::check_same_shape(op, param, grad);
  PETAL_CHECK(param.is_contiguous(), ValueError, op, ": the parameter of shape ", shape_str(param.shape()),
              " must be contiguous");
  for (const Tensor* s : state) {
    detail::check_defined(op, {s});
    PETAL_CHECK(s->dtype() == DType::Float32 && s->is_contiguous() && s->numel() == param.numel(), ValueError, op,
                ": optimizer state of shape ", shape_str(s->shape()), " (", dtype_name(s->dtype()),
                ") must be contiguous float32 with the ", param.numel(), " elements of the parameter ",
                shape_str(param.shape()));
  }
}

}  // namespace

void sgd_update_(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                 bool nesterov, double weight_decay) {
  const char* op = "sgd_update_";
  cuda::SgdParams p;
  p.lr = static_cast<float>(lr);
  p.momentum = static_cast<float>(momentum);
  p.use_momentum = momentum != 0.0;
  p.nesterov = nesterov;
  p.decay = weight_decay > 0.0;
  p.decay_factor = static_cast<float>(1.0 - lr * weight_decay);
  if (p.use_momentum)
    check_update_operands(op, param, grad, {&momentum_buf});
  else
    check_update_operands(op, param, grad, {});
  const detail::Backend backend = p.use_momentum ? detail::select_backend(op, {&param, &grad, &momentum_buf})
                                                 : detail::select_backend(op, {&param, &grad});
  if (backend == detail::Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::sgd_update_(param, grad, momentum_buf, p));
  const Tensor g = grad.contiguous();
  float* w = param.data<float>();
  const float* pg = g.data<float>();
  float* buf = p.use_momentum ? momentum_buf.data<float>() : nullptr;
  parallel_for(0, param.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
    float unused = 0.0f;
    for (std::int64_t i = lo; i < hi; ++i) cuda::sgd_step(w[i], pg[i], buf ? buf[i] : unused, p);
  });
}

void adam_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                  double epsilon, std::int64_t step, double weight_decay) {
  const char* op = "adam_update_";
  PETAL_CHECK(step >= 1, ValueError, op, ": step counts from 1, got ", step);
  check_update_operands(op, param, grad, {&m, &v});
  const double t = static_cast<double>(step);
  cuda::AdamParams p;
  p.lr_t = static_cast<float>(lr * std::sqrt(1.0 - std::pow(beta2, t)) / (1.0 - std::pow(beta1, t)));
  p.one_minus_beta1 = static_cast<float>(1.0 - beta1);
  p.one_minus_beta2 = static_cast<float>(1.0 - beta2);
  p.epsilon = static_cast<float>(epsilon);
  p.decay = weight_decay > 0.0;
  p.decay_factor = static_cast<float>(1.0 - lr * weight_decay);
  if (detail::select_backend(op, {&param, &grad, &m, &v}) == detail::Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::adam_update_(param, grad, m, v, p));
  const Tensor g = grad.contiguous();
  float* w = param.data<float>();
  const float* pg = g.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
  const auto adam_row = cpu::elementwise_table().adam_row;
  parallel_for(0, param.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
    adam_row(w + lo, pg + lo, pm + lo, pv + lo, hi - lo, p);
  });
}

void rmsprop_update_(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum_buf, Tensor& average_grad,
                     double lr, double rho, double momentum, double epsilon, bool centered, double weight_decay) {
  const char* op = "rmsprop_update_";
  PETAL_CHECK(rho >= 0.0 && rho <= 1.0 && momentum >= 0.0 && momentum <= 1.0 && epsilon > 0.0, ValueError, op,
              ": rho and momentum must be in [0, 1] and epsilon positive, got rho ", rho, ", momentum ", momentum,
              ", epsilon ", epsilon);
  cuda::RmspropParams p;
  p.lr = static_cast<float>(lr);
  p.rho = static_cast<float>(rho);
  p.one_minus_rho = static_cast<float>(1.0 - rho);
  p.momentum = static_cast<float>(momentum);
  p.epsilon = static_cast<float>(epsilon);
  p.use_momentum = momentum != 0.0;
  p.centered = centered;
  p.decay = weight_decay > 0.0;
  p.decay_factor = static_cast<float>(1.0 - lr * weight_decay);
  // The state tensors in use: velocity, then momentum_buf and average_grad when used.
  Tensor* const m = p.use_momentum ? &momentum_buf : &velocity;
  Tensor* const a = p.centered ? &average_grad : &velocity;
  check_update_operands(op, param, grad, {&velocity, m, a});
  if (detail::select_backend(op, {&param, &grad, &velocity, m, a}) == detail::Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::rmsprop_update_(param, grad, velocity, momentum_buf, average_grad, p));
  const Tensor g = grad.contiguous();
  float* w = param.data<float>();
  const float* pg = g.data<float>();
  float* vel = velocity.data<float>();
  float* mom = p.use_momentum ? momentum_buf.data<float>() : nullptr;
  float* avg = p.centered ? average_grad.data<float>() : nullptr;
  parallel_for(0, param.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
    float unused_mom = 0.0f, unused_avg = 0.0f;
    for (std::int64_t i = lo; i < hi; ++i)
      cuda::rmsprop_step(w[i], pg[i], vel[i], mom ? mom[i] : unused_mom, avg ? avg[i] : unused_avg, p);
  });
}

void adagrad_update_(Tensor& param, const Tensor& grad, Tensor& accumulator, double lr, double epsilon,
                     double weight_decay) {
  const char* op = "adagrad_update_";
  PETAL_CHECK(epsilon >= 0.0, ValueError, op, ": epsilon must be non-negative, got ", epsilon);
  check_update_operands(op, param, grad, {&accumulator});
  cuda::AdagradParams p;
  p.lr = static_cast<float>(lr);
  p.epsilon = static_cast<float>(epsilon);
  p.decay = weight_decay > 0.0;
  p.decay_factor = static_cast<float>(1.0 - lr * weight_decay);
  if (detail::select_backend(op, {&param, &grad, &accumulator}) == detail::Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::adagrad_update_(param, grad, accumulator, p));
  const Tensor g = grad.contiguous();
  float* w = param.data<float>();
  const float* pg = g.data<float>();
  float* acc = accumulator.data<float>();
  parallel_for(0, param.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) cuda::adagrad_step(w[i], pg[i], acc[i], p);
  });
}

double squared_norm(const Tensor& a) {
  const char* op = "squared_norm";
  detail::check_floating_operands(op, {&a});
  if (detail::select_backend(op, {&a}) == detail::Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::squared_norm(a));
  const Tensor c = a.contiguous();
  double s = 0.0;
  // In order, one thread: the sum clipping has always used.
  if (c.dtype() == DType::Float32) {
    const float* p = c.data<float>();
    for (std::int64_t i = 0; i < c.numel(); ++i) s += static_cast<double>(p[i]) * p[i];
  } else {
    const double* p = c.data<double>();
    for (std::int64_t i = 0; i < c.numel(); ++i) s += p[i] * p[i];
  }
  return s;
}

}  // namespace petal::ops
