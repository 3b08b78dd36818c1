#include "nn/optimizers.hpp"

#include <cmath>
#include <set>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_constant.hpp"

namespace petal::nn {

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
      const double norm = std::sqrt(ops::squared_norm(it.grad));
      if (norm > *options_.clipnorm) ops::mul_scalar_(it.grad, *options_.clipnorm / norm);
    }
  } else if (options_.global_clipnorm) {
    double total = 0.0;
    for (Item& it : items) total += ops::squared_norm(it.grad);
    const double norm = std::sqrt(total);
    if (norm > *options_.global_clipnorm)
      for (Item& it : items) ops::mul_scalar_(it.grad, *options_.global_clipnorm / norm);
  } else if (options_.clipvalue) {
    for (Item& it : items) ops::clamp_(it.grad, -*options_.clipvalue, *options_.clipvalue);
  }

  const double lr = learning_rate();
  for (const Item& it : items) ops::check_not_declared_constant(it.param.data(), "Optimizer::apply_gradients");
  for (Item& it : items) {
    Tensor w = it.param.mutable_data().view({-1});
    update(it.param.name(), w, it.grad, lr);
  }
  ++iterations_;
}

void Optimizer::set_parameters(std::vector<ag::Variable> parameters) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const ag::Variable& p = parameters[i];
    PETAL_CHECK(p.defined(), ValueError, name_, ": parameter ", i, " of ", parameters.size(), " is undefined");
    PETAL_CHECK(!p.name().empty(), ValueError, name_, ": parameter ", i, " of ", parameters.size(),
                " has no name (optimizer state is keyed by names)");
    PETAL_CHECK(names.insert(p.name()).second, ValueError, name_, ": two parameters are named \"", p.name(),
                "\" (they would share optimizer state)");
  }
  parameters_ = std::move(parameters);
}

void Optimizer::step() {
  PETAL_CHECK(!parameters_.empty(), ValueError, name_,
              ": step() without arguments needs parameters (pass them to the constructor or set_parameters(), "
              "or call step(parameters))");
  step(parameters_);
}

void Optimizer::zero_grad() {
  PETAL_CHECK(!parameters_.empty(), ValueError, name_,
              ": zero_grad() needs parameters (pass them to the constructor or set_parameters())");
  for (ag::Variable& p : parameters_) p.zero_grad();
}

Tensor& Optimizer::slot(const std::string& param_name, const char* slot_name, std::int64_t n, Device device,
                        double initial) {
  const std::string key = param_name + "/" + slot_name;
  auto it = slots_.find(key);
  if (it == slots_.end() || it->second.numel() != n)
    it = slots_.insert_or_assign(key, initial == 0.0 ? zeros({n}, DType::Float32, device)
                                                     : full({n}, initial, DType::Float32, device))
             .first;
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

SGD::SGD(std::vector<ag::Variable> parameters, double learning_rate, double momentum, bool nesterov,
         OptimizerOptions options)
    : SGD(learning_rate, momentum, nesterov, options) {
  set_parameters(std::move(parameters));
}

void SGD::update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) {
  Tensor momentum;  // unused (undefined) without momentum
  if (momentum_ != 0.0) momentum = slot(param_name, "momentum", w.numel(), w.device());
  ops::sgd_update_(w, g, momentum, lr, momentum_, nesterov_, options().weight_decay);
}

Adam::Adam(double learning_rate, AdamOptions adam, OptimizerOptions options)
    : Adam("Adam", learning_rate, adam, options) {}

Adam::Adam(std::string name, double learning_rate, AdamOptions adam, OptimizerOptions options)
    : Optimizer(std::move(name), learning_rate, options), adam_(adam) {
  PETAL_CHECK(adam.beta_1 >= 0 && adam.beta_1 < 1 && adam.beta_2 >= 0 && adam.beta_2 < 1 && adam.epsilon > 0,
              ValueError, "Adam: betas must be in [0, 1) and epsilon positive");
}

Adam::Adam(std::vector<ag::Variable> parameters, double learning_rate, AdamOptions adam, OptimizerOptions options)
    : Adam(learning_rate, adam, options) {
  set_parameters(std::move(parameters));
}

void Adam::update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) {
  Tensor& m = slot(param_name, "m", w.numel(), w.device());
  Tensor& v = slot(param_name, "v", w.numel(), w.device());
  ops::adam_update_(w, g, m, v, lr, adam_.beta_1, adam_.beta_2, adam_.epsilon, iterations() + 1,
                    options().weight_decay);
}

namespace {

OptimizerOptions with_weight_decay(OptimizerOptions options, double weight_decay) {
  PETAL_CHECK(options.weight_decay == 0.0 || options.weight_decay == weight_decay, ValueError,
              "AdamW: weight_decay given twice (", weight_decay, " and options.weight_decay ", options.weight_decay,
              ")");
  options.weight_decay = weight_decay;
  return options;
}

}  // namespace

AdamW::AdamW(double learning_rate, double weight_decay, AdamOptions adam, OptimizerOptions options)
    : Adam("AdamW", learning_rate, adam, with_weight_decay(options, weight_decay)) {}

AdamW::AdamW(std::vector<ag::Variable> parameters, double learning_rate, double weight_decay, AdamOptions adam,
             OptimizerOptions options)
    : AdamW(learning_rate, weight_decay, adam, options) {
  set_parameters(std::move(parameters));
}

RMSprop::RMSprop(double learning_rate, RMSpropOptions rmsprop, OptimizerOptions options)
    : Optimizer("RMSprop", learning_rate, options), rmsprop_(rmsprop) {
  PETAL_CHECK(rmsprop.rho >= 0 && rmsprop.rho <= 1 && rmsprop.momentum >= 0 && rmsprop.momentum <= 1 &&
                  rmsprop.epsilon > 0,
              ValueError, "RMSprop: rho and momentum must be in [0, 1] and epsilon positive, got rho ", rmsprop.rho,
              ", momentum ", rmsprop.momentum, ", epsilon ", rmsprop.epsilon);
}

RMSprop::RMSprop(std::vector<ag::Variable> parameters, double learning_rate, RMSpropOptions rmsprop,
                 OptimizerOptions options)
    : RMSprop(learning_rate, rmsprop, options) {
  set_parameters(std::move(parameters));
}

void RMSprop::update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) {
  Tensor& velocity = slot(param_name, "velocity", w.numel(), w.device());
  Tensor momentum, average;  // undefined unless used
  if (rmsprop_.momentum != 0.0) momentum = slot(param_name, "momentum", w.numel(), w.device());
  if (rmsprop_.centered) average = slot(param_name, "average_gradient", w.numel(), w.device());
  ops::rmsprop_update_(w, g, velocity, momentum, average, lr, rmsprop_.rho, rmsprop_.momentum, rmsprop_.epsilon,
                       rmsprop_.centered, options().weight_decay);
}

Adagrad::Adagrad(double learning_rate, AdagradOptions adagrad, OptimizerOptions options)
    : Optimizer("Adagrad", learning_rate, options), adagrad_(adagrad) {
  PETAL_CHECK(adagrad.initial_accumulator_value >= 0 && adagrad.epsilon >= 0, ValueError,
              "Adagrad: initial_accumulator_value and epsilon must be non-negative");
}

Adagrad::Adagrad(std::vector<ag::Variable> parameters, double learning_rate, AdagradOptions adagrad,
                 OptimizerOptions options)
    : Adagrad(learning_rate, adagrad, options) {
  set_parameters(std::move(parameters));
}

void Adagrad::update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) {
  Tensor& accumulator = slot(param_name, "accumulator", w.numel(), w.device(), adagrad_.initial_accumulator_value);
  ops::adagrad_update_(w, g, accumulator, lr, adagrad_.epsilon, options().weight_decay);
}

std::shared_ptr<Optimizer> make_optimizer(const std::string& name) {
  if (name == "adam") return std::make_shared<Adam>();
  if (name == "sgd") return std::make_shared<SGD>();
  if (name == "adamw") return std::make_shared<AdamW>();
  if (name == "rmsprop") return std::make_shared<RMSprop>();
  if (name == "adagrad") return std::make_shared<Adagrad>();
  throw ValueError(str_cat("unknown optimizer \"", name, "\" (expected sgd, adam, adamw, rmsprop or adagrad)"));
}

}  // namespace petal::nn
