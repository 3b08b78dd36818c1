// Helpers for the layer tests (tests/nn/test_layers_*.cpp): random tensors,
// weights in float64, and a gradient check of a layer's input and of every
// parameter against central differences.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "core/random.hpp"
#include "nn/module.hpp"

namespace petal::nn::testing {

inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::Float32, double low = -1.0,
                            double high = 1.0) {
  Generator gen(seed);
  return uniform(shape, low, high, gen).to(dtype);
}

inline std::vector<float> values(const ag::Variable& v) { return v.data().to(DType::Float32).to_vector<float>(); }

inline void to_float64(Module& m) {
  for (auto& w : m.weights()) w.variable.set_data(w.variable.data().to(DType::Float64));
}

// Checks the gradient of sum(layer(x) * r) (r fixed and random) with respect
// to x (when check_input) and to every parameter of the built layer, whose
// weights are turned to float64 first. x must be float64.
inline void check_layer_gradients(Module& layer, const Tensor& x, bool check_input = true) {
  REQUIRE(x.dtype() == DType::Float64);
  to_float64(layer);
  if (check_input) {
    auto fn = [&](const std::vector<ag::Variable>& v) { return layer(v[0]); };
    const ag::GradcheckResult r = ag::gradcheck(fn, {ag::Variable(x, true)});
    CHECK_MESSAGE(r.ok, "input: ", r.message);
  }
  const ag::Variable input(x);
  Tensor weights_of_output;
  auto objective = [&]() {
    ag::Variable y = layer(input);
    if (!weights_of_output.defined()) weights_of_output = random_tensor(y.shape(), 77, DType::Float64);
    return ag::sum(ag::mul(y, ag::Variable(weights_of_output)));
  };
  for (auto w : layer.weights()) {
    if (!w.is_parameter) continue;
    layer.zero_grad();
    objective().backward();
    REQUIRE_MESSAGE(w.variable.has_grad(), w.name);
    const std::vector<double> analytic = w.variable.grad().to_vector<double>();
    Tensor& data = w.variable.mutable_data();
    REQUIRE(data.is_contiguous());
    double* p = static_cast<double*>(data.raw_data());
    const double eps = 1e-6;
    for (std::int64_t i = 0; i < data.numel(); ++i) {
      ag::NoGradGuard no_grad;
      const double saved = p[i];
      p[i] = saved + eps;
      const double up = objective().data().item<double>();
      p[i] = saved - eps;
      const double down = objective().data().item<double>();
      p[i] = saved;
      const double numeric = (up - down) / (2 * eps);
      CHECK_MESSAGE(std::abs(analytic[static_cast<std::size_t>(i)] - numeric) <= 1e-5 + 1e-4 * std::abs(numeric),
                    w.name, "[", i, "]: analytic ", analytic[static_cast<std::size_t>(i)], ", numeric ", numeric);
    }
  }
}

}  // namespace petal::nn::testing
