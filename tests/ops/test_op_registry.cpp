// Runs every entry of the op-test registry (tests/ops/op_registry.hpp) on the
// CPU: forward under every ISA this CPU has and 1 and 2 threads against the
// entry's double-precision reference, and gradcheck of its differentiable
// form in float64.
#include <doctest/doctest.h>

#include <string>

#include "autograd/gradcheck.hpp"
#include "tests/kernels/ops_test_support.hpp"
#include "tests/ops/op_registry.hpp"

using namespace petal;
using namespace petal::test;

TEST_CASE("every registered op matches its reference on every ISA and thread count") {
  std::size_t runs = 0;
  const std::size_t entries = for_each_entry(20261206, [&](const OpCase& c, DType dtype, Generator& gen) {
    const DrawnEntry drawn = draw_entry(c, dtype, gen);
    INFO(c.label(dtype));
    for_each_isa_and_threads([&] {
      const std::string problem = check_entry(c, dtype, drawn);
      INFO(problem);
      CHECK(problem.empty());
      ++runs;
    });
  });
  MESSAGE(all_op_cases().size(), " entries, ", entries, " entries and dtypes, ", runs, " forward runs");
}

TEST_CASE("every registered op with a derivative passes gradcheck") {
  Generator gen(20261207);
  std::size_t checked = 0, too_large = 0, without_derivative = 0;
  for (const OpCase& c : all_op_cases()) {
    if (!c.differentiable) {
      ++without_derivative;
      continue;
    }
    std::int64_t elements = 0;
    for (const InputSpec& spec : c.inputs) elements += shape_numel(spec.shape);
    if (elements > c.gradcheck_max_elements) {
      ++too_large;
      continue;
    }
    const Inputs inputs = make_inputs(c, DType::Float64, gen);
    std::vector<ag::Variable> variables;
    for (std::size_t i = 0; i < inputs.size(); ++i)
      variables.emplace_back(inputs[i].to(DType::Float64), c.inputs[i].differentiable);
    const ag::GradcheckResult result = ag::gradcheck(c.differentiable, variables);
    INFO(c.label(DType::Float64), ": ", result.message);
    CHECK(result.ok);
    ++checked;
  }
  CHECK(checked > 0);
  MESSAGE(checked, " entries gradchecked; ", too_large, " larger than their gradcheck bound; ", without_derivative,
          " without a derivative in autograd");
}
