#include "nn/schedules.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace petal::nn {

ExponentialDecay::ExponentialDecay(double initial, std::int64_t decay_steps, double decay_rate, bool staircase)
    : initial_(initial), decay_steps_(decay_steps), rate_(decay_rate), staircase_(staircase) {
  PETAL_CHECK(decay_steps > 0, ValueError, "ExponentialDecay: decay_steps must be positive, got ", decay_steps);
}

double ExponentialDecay::operator()(std::int64_t step) const {
  double p = static_cast<double>(step) / static_cast<double>(decay_steps_);
  if (staircase_) p = std::floor(p);
  return initial_ * std::pow(rate_, p);
}

StepDecay::StepDecay(double initial, std::int64_t step_size, double factor)
    : initial_(initial), step_size_(step_size), factor_(factor) {
  PETAL_CHECK(step_size > 0, ValueError, "StepDecay: step_size must be positive, got ", step_size);
}

double StepDecay::operator()(std::int64_t step) const {
  return initial_ * std::pow(factor_, static_cast<double>(step / step_size_));
}

CosineDecay::CosineDecay(double initial, std::int64_t decay_steps, double alpha)
    : initial_(initial), decay_steps_(decay_steps), alpha_(alpha) {
  PETAL_CHECK(decay_steps > 0, ValueError, "CosineDecay: decay_steps must be positive, got ", decay_steps);
}

double CosineDecay::operator()(std::int64_t step) const {
  const double s = static_cast<double>(std::min(step, decay_steps_)) / static_cast<double>(decay_steps_);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * s));
  return initial_ * ((1.0 - alpha_) * cosine + alpha_);
}

PiecewiseConstantDecay::PiecewiseConstantDecay(std::vector<std::int64_t> boundaries, std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  PETAL_CHECK(values_.size() == boundaries_.size() + 1, ValueError, "PiecewiseConstantDecay: ", boundaries_.size(),
              " boundaries need ", boundaries_.size() + 1, " values, got ", values_.size());
  for (std::size_t i = 1; i < boundaries_.size(); ++i)
    PETAL_CHECK(boundaries_[i - 1] < boundaries_[i], ValueError,
                "PiecewiseConstantDecay: boundaries must increase strictly, got ", boundaries_[i - 1], " then ",
                boundaries_[i]);
}

double PiecewiseConstantDecay::operator()(std::int64_t step) const {
  // The first boundary >= step: its index is the value's.
  const auto it = std::lower_bound(boundaries_.begin(), boundaries_.end(), step);
  return values_[static_cast<std::size_t>(it - boundaries_.begin())];
}

PolynomialDecay::PolynomialDecay(double initial, std::int64_t decay_steps, double end, double power, bool cycle)
    : initial_(initial), decay_steps_(decay_steps), end_(end), power_(power), cycle_(cycle) {
  PETAL_CHECK(decay_steps > 0, ValueError, "PolynomialDecay: decay_steps must be positive, got ", decay_steps);
}

double PolynomialDecay::operator()(std::int64_t step) const {
  double s = static_cast<double>(step);
  double d = static_cast<double>(decay_steps_);
  if (cycle_) {
    d *= step == 0 ? 1.0 : std::ceil(s / d);
  } else {
    s = std::min(s, d);
  }
  return (initial_ - end_) * std::pow(1.0 - s / d, power_) + end_;
}

namespace {

class Constant : public LearningRateSchedule {
 public:
  explicit Constant(double value) : value_(value) {}
  double operator()(std::int64_t) const override { return value_; }

 private:
  double value_;
};

}  // namespace

WarmUp::WarmUp(std::shared_ptr<const LearningRateSchedule> after, std::int64_t warmup_steps, double initial,
               bool offset)
    : after_(std::move(after)), warmup_steps_(warmup_steps), initial_(initial), offset_(offset) {
  PETAL_CHECK(after_ != nullptr, ValueError, "WarmUp: null schedule");
  PETAL_CHECK(warmup_steps >= 0, ValueError, "WarmUp: warmup_steps must be non-negative, got ", warmup_steps);
}

WarmUp::WarmUp(double target, std::int64_t warmup_steps, double initial)
    : WarmUp(std::make_shared<Constant>(target), warmup_steps, initial) {}

double WarmUp::operator()(std::int64_t step) const {
  if (step < warmup_steps_) {
    const double target = (*after_)(offset_ ? 0 : warmup_steps_);
    return (target - initial_) * (static_cast<double>(step) / static_cast<double>(warmup_steps_)) + initial_;
  }
  return (*after_)(offset_ ? step - warmup_steps_ : step);
}

}  // namespace petal::nn
