// Central-difference gradient check in float64.
#include "autograd/gradcheck.hpp"

#include <cmath>
#include <cstddef>

namespace petal::ag {

namespace {

// sum(y * w) in double on the host: the scalar whose gradient is checked.
double weighted_sum(const Tensor& y, const std::vector<double>& w) {
  const std::vector<double> values = y.to_vector<double>();
  double total = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) total += values[i] * w[i];
  return total;
}

void check_output(const Variable& out, const char* pass) {
  PETAL_CHECK(out.defined(), ValueError, "gradcheck: fn returned an undefined variable (", pass, ")");
  PETAL_CHECK(out.dtype() == DType::Float64, DTypeError, "gradcheck: fn returned ", out.dtype(),
              " (", pass, "); gradcheck runs in float64");
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Variable>& inputs, const GradcheckOptions& options) {
  PETAL_CHECK(grad_enabled(), AutogradError,
              "gradcheck: grad mode is off (a NoGradGuard is active), so the tape records nothing to check");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    PETAL_CHECK(inputs[i].defined(), ValueError, "gradcheck: input ", i, " is undefined");
    PETAL_CHECK(inputs[i].dtype() == DType::Float64, DTypeError, "gradcheck: input ", i, " is ", inputs[i].dtype(),
                "; gradcheck runs in float64");
  }

  // Analytical gradients from the tape, on fresh leaves so the caller's
  // variables keep their own .grad. Seeding backward with w differentiates
  // sum(out * w) without relying on the mul and sum ops being right.
  std::vector<Variable> leaves;
  for (const Variable& input : inputs) leaves.emplace_back(input.data().clone(), input.requires_grad());
  const Variable out = fn(leaves);
  check_output(out, "analytical pass");
  Generator gen(options.seed);
  const Tensor weights = normal(out.shape(), 0.0, 1.0, gen, DType::Float64);
  if (out.requires_grad()) out.backward(weights);
  const std::vector<double> w = weights.to_vector<double>();

  // Numerical gradients: perturb one element of a private copy at a time.
  NoGradGuard no_grad;
  std::vector<Tensor> probes;
  std::vector<Variable> probe_vars;
  for (const Variable& input : inputs) {
    probes.push_back(input.data().clone());
    probe_vars.emplace_back(probes.back(), false);
  }
  auto objective = [&] {
    const Variable y = fn(probe_vars);
    check_output(y, "numerical pass");
    PETAL_CHECK(y.shape() == out.shape(), ShapeError, "gradcheck: fn returned shape ", shape_str(y.shape()),
                " on perturbed inputs, ", shape_str(out.shape()), " before");
    return weighted_sum(y.data(), w);
  };

  GradcheckResult result;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    const std::int64_t n = probes[i].numel();
    const std::vector<double> analytical = leaves[i].has_grad() ? leaves[i].grad().to_vector<double>()
                                                                : std::vector<double>(static_cast<std::size_t>(n), 0.0);
    double* x = probes[i].data<double>();
    for (std::int64_t k = 0; k < n; ++k) {
      const double original = x[k];
      x[k] = original + options.eps;
      const double plus = objective();
      x[k] = original - options.eps;
      const double minus = objective();
      x[k] = original;
      const double numerical = (plus - minus) / (2.0 * options.eps);
      const double got = analytical[static_cast<std::size_t>(k)];
      const double error = std::abs(got - numerical);
      if (std::isnan(error) || error > result.max_abs_error) result.max_abs_error = error;
      const bool close = error <= options.atol + options.rtol * std::abs(numerical);
      if (!close && result.ok) {
        result.ok = false;
        result.message = str_cat("gradcheck: input ", i, " of shape ", shape_str(probes[i].shape()),
                                 ", element ", k, " (C order): analytical ", got, " vs numerical ", numerical,
                                 " (|difference| ", error, " > atol ", options.atol, " + rtol ", options.rtol,
                                 " * |numerical|)");
      }
    }
  }
  return result;
}

}  // namespace petal::ag
