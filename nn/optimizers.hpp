// Optimizers in Keras's exact form, updating float32 parameters in place.
//
//   SGD:  m = momentum * m - lr * g;  w += m   (nesterov: w += momentum * m - lr * g)
//         without momentum: w -= lr * g
//   Adam: t = iterations + 1, lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t),
//         m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2);
//         w -= lr_t * m / (sqrt(v) + epsilon)
//   AdamW: Adam with decoupled weight decay on by default (0.004, Keras's).
//   RMSprop (Keras 3): velocity = rho * velocity + (1 - rho) * g^2;
//         centered: average_grad = rho * average_grad + (1 - rho) * g,
//         denominator = velocity - average_grad^2 + epsilon, else
//         velocity + epsilon; increment = lr * g / sqrt(denominator);
//         momentum > 0: m = momentum * m + increment, w -= m; else w -= increment
//   Adagrad: accumulator (from initial_accumulator_value) += g^2;
//         w -= lr * g / sqrt(accumulator + epsilon)
//
// Slots (checkpoint keys "<parameter>/<slot>"): SGD "momentum"; Adam and
// AdamW "m", "v"; RMSprop "velocity", "momentum" (momentum > 0),
// "average_gradient" (centered); Adagrad "accumulator".
//
// Shared options, applied in this order before the update: gradient clipping
// (clipnorm per tensor, global_clipnorm over all, or clipvalue; one at most,
// as in Keras), then decoupled weight decay w -= lr * weight_decay * w. The
// learning rate is a constant or a schedule evaluated at `iterations()`.
// Slot state (momenta) is keyed by the parameter's name, so it follows the
// weights into checkpoints and survives freezing and unfreezing layers.
//
// Parameters: each step names its parameters, step(params) (Keras's
// apply_gradients), or the optimizer holds a list given at construction or by
// set_parameters() (libtorch's form), which step() and zero_grad() use:
//
//   nn::Adam opt(model.trainable_parameters(), 1e-3);
//   opt.zero_grad(); loss.backward(); opt.step();
//
// Both forms run the same update: step() is step(parameters()).
//
// Devices: parameters may live on any device (all of one step's on the same
// or on several); slots are created on, and moved to, their parameter's
// device. The arithmetic is kernels/ops.hpp's fused updates (sgd_update_,
// adam_update_, rmsprop_update_, adagrad_update_, squared_norm, clamp_), the
// same float32 forms on every device.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "nn/schedules.hpp"

namespace petal::nn {

struct OptimizerOptions {
  double weight_decay = 0.0;
  std::optional<double> clipnorm = std::nullopt;
  std::optional<double> global_clipnorm = std::nullopt;
  std::optional<double> clipvalue = std::nullopt;
};

class Optimizer {
 public:
  Optimizer(std::string name, double learning_rate, OptimizerOptions options);
  virtual ~Optimizer() = default;

  const std::string& name() const { return name_; }
  // The rate the next step uses.
  double learning_rate() const;
  // A constant rate (replaces any schedule).
  void set_learning_rate(double lr);
  void set_schedule(std::shared_ptr<LearningRateSchedule> schedule);
  // The schedule in use, null for a constant rate.
  const std::shared_ptr<LearningRateSchedule>& schedule() const { return schedule_; }
  std::int64_t iterations() const { return iterations_; }
  const OptimizerOptions& options() const { return options_; }

  // One update of every parameter that has a gradient, then iterations += 1.
  // Parameters need names (Module gives them), float32, contiguous.
  void step(const std::vector<ag::Variable>& parameters);

  // The parameters step() and zero_grad() use (replaces any earlier list;
  // slots stay, keyed by name). Each must be defined and named, the names
  // distinct (ValueError otherwise). The optimizer shares the variables, so
  // it sees their later gradients and updates them in place.
  void set_parameters(std::vector<ag::Variable> parameters);
  const std::vector<ag::Variable>& parameters() const { return parameters_; }
  // step(parameters()); ValueError when no parameters were given.
  void step();
  // Drops the gradients of parameters() (undefined again, as
  // Variable::zero_grad); ValueError when no parameters were given.
  void zero_grad();

  // Slots as "<parameter name>/<slot>" tensors (on their parameters'
  // devices), for checkpoints.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores slots and the step count (slots not in `slots` are dropped).
  void load_state(const std::vector<std::pair<std::string, Tensor>>& slots, std::int64_t iterations);

 protected:
  // Updates one parameter in place, options().weight_decay included: w and g
  // are contiguous float32 [n] on the same device.
  virtual void update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) = 0;
  // The named slot of a parameter as float32 [n] on `device`: filled with
  // `initial` (zeros by default) on first use, moved there when it was
  // restored or last used elsewhere.
  Tensor& slot(const std::string& param_name, const char* slot_name, std::int64_t n, Device device,
               double initial = 0.0);

 private:
  std::string name_;
  double learning_rate_;
  std::shared_ptr<LearningRateSchedule> schedule_;
  OptimizerOptions options_;
  std::int64_t iterations_ = 0;
  std::map<std::string, Tensor> slots_;
  std::vector<ag::Variable> parameters_;
};

class SGD : public Optimizer {
 public:
  explicit SGD(double learning_rate = 0.01, double momentum = 0.0, bool nesterov = false,
               OptimizerOptions options = {});
  // With the parameters step() updates (set_parameters).
  explicit SGD(std::vector<ag::Variable> parameters, double learning_rate = 0.01, double momentum = 0.0,
               bool nesterov = false, OptimizerOptions options = {});

 protected:
  void update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) override;

 private:
  double momentum_;
  bool nesterov_;
};

struct AdamOptions {
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
};

class Adam : public Optimizer {
 public:
  explicit Adam(double learning_rate = 1e-3, AdamOptions adam = {}, OptimizerOptions options = {});
  // With the parameters step() updates (set_parameters).
  explicit Adam(std::vector<ag::Variable> parameters, double learning_rate = 1e-3, AdamOptions adam = {},
                OptimizerOptions options = {});

 protected:
  // For subclasses with their own name (AdamW).
  Adam(std::string name, double learning_rate, AdamOptions adam, OptimizerOptions options);
  void update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) override;

 private:
  AdamOptions adam_;
};

// Adam with decoupled weight decay (Keras's AdamW): weight_decay sets
// options.weight_decay (ValueError when options already sets a different
// non-zero one). Checkpoints name it "AdamW".
class AdamW : public Adam {
 public:
  explicit AdamW(double learning_rate = 1e-3, double weight_decay = 0.004, AdamOptions adam = {},
                 OptimizerOptions options = {});
  // With the parameters step() updates (set_parameters).
  explicit AdamW(std::vector<ag::Variable> parameters, double learning_rate = 1e-3, double weight_decay = 0.004,
                 AdamOptions adam = {}, OptimizerOptions options = {});
};

struct RMSpropOptions {
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
};

class RMSprop : public Optimizer {
 public:
  explicit RMSprop(double learning_rate = 1e-3, RMSpropOptions rmsprop = {}, OptimizerOptions options = {});
  // With the parameters step() updates (set_parameters).
  explicit RMSprop(std::vector<ag::Variable> parameters, double learning_rate = 1e-3, RMSpropOptions rmsprop = {},
                   OptimizerOptions options = {});

 protected:
  void update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) override;

 private:
  RMSpropOptions rmsprop_;
};

struct AdagradOptions {
  double initial_accumulator_value = 0.1;
  double epsilon = 1e-7;
};

class Adagrad : public Optimizer {
 public:
  explicit Adagrad(double learning_rate = 1e-3, AdagradOptions adagrad = {}, OptimizerOptions options = {});
  // With the parameters step() updates (set_parameters).
  explicit Adagrad(std::vector<ag::Variable> parameters, double learning_rate = 1e-3, AdagradOptions adagrad = {},
                   OptimizerOptions options = {});

 protected:
  void update(const std::string& param_name, Tensor& w, const Tensor& g, double lr) override;

 private:
  AdagradOptions adagrad_;
};

// "sgd", "adam", "adamw", "rmsprop" or "adagrad" with Keras's defaults.
std::shared_ptr<Optimizer> make_optimizer(const std::string& name);

}  // namespace petal::nn
