// Random float64 inputs and a gradcheck assertion for the autograd tests.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "core/tensor.hpp"

namespace petal::ag::testing {

inline Generator& test_generator() {
  static Generator gen(20261128);
  return gen;
}

// Normal(0, 1) float64 values.
inline Variable random_input(const Shape& shape, bool requires_grad = true) {
  return Variable(normal(shape, 0.0, 1.0, test_generator(), DType::Float64), requires_grad);
}

// Uniform in [low, high) float64 values.
inline Variable uniform_input(const Shape& shape, double low, double high, bool requires_grad = true) {
  return Variable(uniform(shape, low, high, test_generator(), DType::Float64), requires_grad);
}

// Values in (-range, range) at least `margin` away from every kink, so finite
// differences never straddle a point where the derivative jumps.
inline Variable input_away_from(const Shape& shape, const std::vector<double>& kinks, double range,
                                double margin = 0.05) {
  std::vector<double> values;
  const std::int64_t n = shape_numel(shape);
  while (static_cast<std::int64_t>(values.size()) < n) {
    const double v = (2.0 * test_generator().uniform_double() - 1.0) * range;
    bool near_kink = false;
    for (double k : kinks) near_kink = near_kink || std::abs(v - k) < margin;
    if (!near_kink) values.push_back(v);
  }
  return Variable(from_vector(values, shape), true);
}

using Fn = std::function<Variable(const std::vector<Variable>&)>;

}  // namespace petal::ag::testing

// Runs gradcheck and reports its message on failure.
#define CHECK_GRADIENTS(fn, ...)                                                  \
  do {                                                                            \
    const ::petal::ag::GradcheckResult check_result = ::petal::ag::gradcheck(fn, __VA_ARGS__); \
    INFO(check_result.message);                                                   \
    CHECK(check_result.ok);                                                       \
  } while (0)
