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

}  // namespace petal::nn
