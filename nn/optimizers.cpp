#include "nn/optimizers.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/ops.hpp"

namespace petal::nn {

namespace {

constexpr std::int64_t kGrain = 1 << 15;

// Runs fn(begin, end) over [0, n) on the pool when n is large.
template <class Fn>
void for_range(std::int64_t n, Fn&& fn) {
  parallel_for(0, n, kGrain, [&](std::int64_t b, std::int64_t e) { fn(b, e); });
}

// The helpers below take contiguous float32 tensors: on the CPU they run the
// threaded loops (summing in double), elsewhere the device's ops.

double squared_norm(const Tensor& g) {
  if (!g.device().is_cpu()) return ops::sum(ops::mul(g, g)).item<double>();
  const float* p = g.data<float>();
  double s = 0.0;
  for (std::int64_t i = 0, n = g.numel(); i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

void scale_(Tensor& t, double factor) {
  if (!t.device().is_cpu()) {
    ops::mul_scalar_(t, static_cast<double>(static_cast<float>(factor)));
    return;
  }
  float* p = t.data<float>();
  const float f = static_cast<float>(factor);
  for_range(t.numel(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) p[i] *= f;
  });
}

void clip_values_(Tensor& g, double limit) {
  const float c = static_cast<float>(limit);
  if (!g.device().is_cpu()) {
    g.copy_(ops::clamp(g, -c, c));
    return;
  }
  float* p = g.data<float>();
  for_range(g.numel(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) p[i] = std::fmin(std::fmax(p[i], -c), c);
  });
}

// One pass over the parameter and both moments (the update is memory-bound on
// large models, so everything happens in a single sweep).
void adam_update_range(float* w, const float* g, float* m, float* v,
                       std::int64_t begin, std::int64_t end, float lr_t, float one_minus_b1, float one_minus_b2,
                       float eps) {
  for (std::int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    m[i] += (gi - m[i]) * one_minus_b1;
    v[i] += (gi * gi - v[i]) * one_minus_b2;
    w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + eps);
  }
}

}  // namespace

Optimizer::Optimizer(std::string name, double learning_rate, OptimizerOptions options)
    : name_(std::move(name)), learning_rate_(learning_rate), options_(options) {
  const int clips = options.clipnorm.has_value() + options.global_clipnorm.has_value() + options.clipvalue.has_value();
  PETAL_CHECK(clips <= 1, ValueError, name_, ": set at most one of clipnorm, global_clipnorm and clipvalue");
  PETAL_CHECK(learning_rate >= 0.0, ValueError, name_, ": learning rate must be non-negative, got ", learning_rate);
  PETAL_CHECK(options.weight_decay >= 0.0, ValueError, name_, ": weight_decay must be non-negative");
  PETAL_CHECK(!options.clipnorm || *options.clipnorm > 0, ValueError, name_, ": clipnorm must be positive");
  PETAL_CHECK(!options.global_clipnorm || *options.global_clipnorm > 0, ValueError, name_,
              ": global_clipnorm must be positive");
  PETAL_CHECK(!options.clipvalue || *options.clipvalue > 0, ValueError, name_, ": clipvalue must be positive");
}

double Optimizer::learning_rate() const { return schedule_ ? (*schedule_)(iterations_) : learning_rate_; }

void Optimizer::set_learning_rate(double lr) {
  PETAL_CHECK(lr >= 0.0, ValueError, name_, ": learning rate must be non-negative, got ", lr);
  learning_rate_ = lr;
  schedule_.reset();
}

void Optimizer::set_schedule(std::shared_ptr<LearningRateSchedule> schedule) { schedule_ = std::move(schedule); }

void Optimizer::step(const std::vector<ag::Variable>& parameters) {
  struct Item {
    ag::Variable param;
    Tensor grad;  // contiguous float32 [n]; a private copy when clipping rewrites it
  };
  std::vector<Item> items;
  const bool clipping = options_.clipnorm || options_.global_clipnorm || options_.clipvalue;
  for (const ag::Variable& p : parameters) {
    if (!p.has_grad()) continue;
    const std::string& pname = p.name();
    PETAL_CHECK(!pname.empty(), ValueError, name_, ": parameters need names (their optimizer state is keyed by them)");
    PETAL_CHECK(p.dtype() == DType::Float32 && p.data().is_contiguous(), DTypeError, name_, ": parameter \"", pname,
                "\" must be a contiguous float32 tensor");
    PETAL_CHECK(p.grad().shape() == p.shape(), ShapeError, name_, ": gradient of \"", pname, "\" has shape ",
                shape_str(p.grad().shape()), ", parameter ", shape_str(p.shape()));
    PETAL_CHECK(p.grad().device() == p.device(), DeviceError, name_, ": gradient of \"", pname, "\" is on ",
                p.grad().device().str(), ", the parameter on ", p.device().str());
    // Clipping rewrites the gradient: then work on a private copy (a 55M-
    // parameter model would otherwise pay a 220 MB copy every step).
    Tensor g = p.grad().to(DType::Float32).contiguous();
    if (clipping && g.storage() == p.grad().storage()) g = g.clone();
    items.push_back({p, g.view({-1})});
  }

  if (options_.clipnorm) {
    for (Item& it : items) {
      const double norm = std::sqrt(squared_norm(it.grad));
      if (norm > *options_.clipnorm) scale_(it.grad, *options_.clipnorm / norm);
    }
  } else if (options_.global_clipnorm) {
    double total = 0.0;
    for (Item& it : items) total += squared_norm(it.grad);
    const double norm = std::sqrt(total);
    if (norm > *options_.global_clipnorm)
      for (Item& it : items) scale_(it.grad, *options_.global_clipnorm / norm);
  } else if (options_.clipvalue) {
    for (Item& it : items) clip_values_(it.grad, *options_.clipvalue);
  }

  const double lr = learning_rate();
  for (Item& it : items) {
    Tensor w = it.param.mutable_data().view({-1});
    if (options_.weight_decay > 0.0) scale_(w, 1.0 - lr * options_.weight_decay);
    update(it.param.name(), w, it.grad, lr);
  }
  ++iterations_;
}

Tensor& Optimizer::slot(const std::string& param_name, const char* slot_name, std::int64_t n, Device device) {
  const std::string key = param_name + "/" + slot_name;
  auto it = slots_.find(key);
  if (it == slots_.end() || it->second.numel() != n)
    it = slots_.insert_or_assign(key, zeros({n}, DType::Float32, device)).first;
  else if (it->second.device() != device)
    it->second = it->second.to(device);
  return it->second;
}

std::vector<std::pair<std::string, Tensor>> Optimizer::state() const {
  return std::vector<std::pair<std::string, Tensor>>(slots_.begin(), slots_.end());
}

void Optimizer::load_state(const std::vector<std::pair<std::string, Tensor>>& slots, std::int64_t iterations) {
  PETAL_CHECK(iterations >= 0, ValueError, name_, ": negative iteration count ", iterations);
  slots_.clear();
  for (const auto& [key, t] : slots) slots_[key] = t.to(DType::Float32).contiguous().reshape({-1}).clone();
  iterations_ = iterations;
}

SGD::SGD(double learning_rate, double momentum, bool nesterov, OptimizerOptions options)
    : Optimizer("SGD", learning_rate, options), momentum_(momentum), nesterov_(nesterov) {
  PETAL_CHECK(momentum >= 0.0 && momentum <= 1.0, ValueError, "SGD: momentum must be in [0, 1], got ", momentum);
}

void SGD::update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) {
  const std::int64_t n = w.numel();
  const float lrf = static_cast<float>(lr);
  const float mu = static_cast<float>(momentum_);
  if (!w.device().is_cpu()) {
    if (momentum_ == 0.0) {
      ops::add_(w, g, -static_cast<double>(lrf));
      return;
    }
    Tensor& m = slot(param_name, "momentum", n, w.device());
    ops::mul_scalar_(m, mu);
    ops::add_(m, g, -static_cast<double>(lrf));
    if (nesterov_) {
      ops::add_(w, m, mu);
      ops::add_(w, g, -static_cast<double>(lrf));
    } else {
      ops::add_(w, m);
    }
    return;
  }
  float* wp = w.data<float>();
  const float* gp = g.data<float>();
  if (momentum_ == 0.0) {
    for_range(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) wp[i] -= lrf * gp[i];
    });
    return;
  }
  float* m = slot(param_name, "momentum", n, w.device()).data<float>();
  const bool nesterov = nesterov_;
  for_range(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      m[i] = mu * m[i] - lrf * gp[i];
      wp[i] += nesterov ? mu * m[i] - lrf * gp[i] : m[i];
    }
  });
}

Adam::Adam(double learning_rate, AdamOptions adam, OptimizerOptions options)
    : Optimizer("Adam", learning_rate, options), adam_(adam) {
  PETAL_CHECK(adam.beta_1 >= 0 && adam.beta_1 < 1 && adam.beta_2 >= 0 && adam.beta_2 < 1 && adam.epsilon > 0,
              ValueError, "Adam: betas must be in [0, 1) and epsilon positive");
}

void Adam::update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) {
  const std::int64_t n = w.numel();
  const double t = static_cast<double>(iterations() + 1);
  const float lr_t = static_cast<float>(lr * std::sqrt(1.0 - std::pow(adam_.beta_2, t)) / (1.0 - std::pow(adam_.beta_1, t)));
  const float one_minus_b1 = static_cast<float>(1.0 - adam_.beta_1);
  const float one_minus_b2 = static_cast<float>(1.0 - adam_.beta_2);
  const float eps = static_cast<float>(adam_.epsilon);
  Tensor& m = slot(param_name, "m", n, w.device());
  Tensor& v = slot(param_name, "v", n, w.device());
  if (!w.device().is_cpu()) {
    ops::add_(m, ops::sub(g, m), one_minus_b1);
    ops::add_(v, ops::sub(ops::mul(g, g), v), one_minus_b2);
    ops::add_(w, ops::div(m, ops::add_scalar(ops::sqrt(v), eps)), -static_cast<double>(lr_t));
    return;
  }
  float* wp = w.data<float>();
  const float* gp = g.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  for_range(n, [&](std::int64_t b, std::int64_t e) {
    adam_update_range(wp, gp, mp, vp, b, e, lr_t, one_minus_b1, one_minus_b2, eps);
  });
}

std::shared_ptr<Optimizer> make_optimizer(const std::string& name) {
  if (name == "adam") return std::make_shared<Adam>();
  if (name == "sgd") return std::make_shared<SGD>();
  throw ValueError(str_cat("unknown optimizer \"", name, "\" (expected adam or sgd)"));
}

}  // namespace petal::nn
