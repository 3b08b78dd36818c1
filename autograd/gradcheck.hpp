// Finite-difference gradient check in float64: compares the tape's gradients
// of every input that requires grad with central differences of a scalar
// function.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"

namespace petal::ag {

struct GradcheckOptions {
  double eps = 1e-6;       // central-difference step
  double atol = 1e-5;
  double rtol = 1e-3;
  std::uint64_t seed = 0x9c4ec;  // of the random output weights w
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string message;  // which input and element failed, with both values
};

// fn maps the inputs (float64 Variables; those with requires_grad are
// checked) to any Variable; the check differentiates sum(fn(inputs) * w) for a
// fixed random w so every output element is tested. An element passes when
// |analytical - numerical| <= atol + rtol * |numerical|; inputs without
// requires_grad are constants. The caller's variables are not modified (the
// check runs on copies). Throws DTypeError when an input or the output is not
// float64, AutogradError when called with grad mode off.
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Variable>& inputs, const GradcheckOptions& options = {});

}  // namespace petal::ag
