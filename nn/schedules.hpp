// Learning-rate schedules over optimizer steps (Keras's
// keras.optimizers.schedules), evaluated at the step count before the update.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

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

// Keras's PiecewiseConstantDecay: values[0] while step <= boundaries[0],
// values[i] while boundaries[i-1] < step <= boundaries[i], values.back()
// after the last boundary. boundaries strictly increasing, one value more
// than boundaries (ValueError otherwise).
class PiecewiseConstantDecay : public LearningRateSchedule {
 public:
  PiecewiseConstantDecay(std::vector<std::int64_t> boundaries, std::vector<double> values);
  double operator()(std::int64_t step) const override;

 private:
  std::vector<std::int64_t> boundaries_;
  std::vector<double> values_;
};

// Keras's PolynomialDecay: (initial - end) * (1 - s / d)^power + end, with
// s = min(step, decay_steps), d = decay_steps; cycle: s = step and d =
// decay_steps * ceil(step / decay_steps) (1 at step 0), so the decay restarts
// from `initial` after every multiple of decay_steps.
class PolynomialDecay : public LearningRateSchedule {
 public:
  PolynomialDecay(double initial, std::int64_t decay_steps, double end = 0.0001, double power = 1.0,
                  bool cycle = false);
  double operator()(std::int64_t step) const override;

 private:
  double initial_;
  std::int64_t decay_steps_;
  double end_;
  double power_;
  bool cycle_;
};

// Linear warm-up before another schedule, with Keras 3's CosineDecay warm-up
// semantics (warmup_target, warmup_steps): for step < warmup_steps the rate is
// initial + (target - initial) * step / warmup_steps, target = after(0); from
// then on after(step - warmup_steps) (the wrapped schedule starts when the
// warm-up ends). So CosineDecay in Keras with initial_learning_rate=i,
// warmup_target=t, warmup_steps=w, decay_steps=d, alpha=a is
// WarmUp(make_shared<CosineDecay>(t, d, a), w, i). With offset = false the
// warm-up rises to after(warmup_steps) instead and the schedule then runs on
// the global step, after(step) (its first warmup_steps steps replaced).
// warmup_steps == 0: no warm-up.
class WarmUp : public LearningRateSchedule {
 public:
  WarmUp(std::shared_ptr<const LearningRateSchedule> after, std::int64_t warmup_steps, double initial = 0.0,
         bool offset = true);
  // Warm-up to a constant rate `target`, held afterwards.
  WarmUp(double target, std::int64_t warmup_steps, double initial = 0.0);
  double operator()(std::int64_t step) const override;

 private:
  std::shared_ptr<const LearningRateSchedule> after_;
  std::int64_t warmup_steps_;
  double initial_;
  bool offset_;
};

}  // namespace petal::nn
