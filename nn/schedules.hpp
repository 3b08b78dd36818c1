// Learning-rate schedules over optimizer steps (Keras's
// keras.optimizers.schedules), evaluated at the step count before the update.
#pragma once

#include <cstdint>

namespace petal::nn {

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  virtual double operator()(std::int64_t step) const = 0;
};

// initial * rate^(step / decay_steps), the exponent floored when staircase.
class ExponentialDecay : public LearningRateSchedule {
 public:
  ExponentialDecay(double initial, std::int64_t decay_steps, double decay_rate, bool staircase = false);
  double operator()(std::int64_t step) const override;

 private:
  double initial_;
  std::int64_t decay_steps_;
  double rate_;
  bool staircase_;
};

// initial * factor^floor(step / step_size).
class StepDecay : public LearningRateSchedule {
 public:
  StepDecay(double initial, std::int64_t step_size, double factor);
  double operator()(std::int64_t step) const override;

 private:
  double initial_;
  std::int64_t step_size_;
  double factor_;
};

// initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha).
class CosineDecay : public LearningRateSchedule {
 public:
  CosineDecay(double initial, std::int64_t decay_steps, double alpha = 0.0);
  double operator()(std::int64_t step) const override;

 private:
  double initial_;
  std::int64_t decay_steps_;
  double alpha_;
};

}  // namespace petal::nn
