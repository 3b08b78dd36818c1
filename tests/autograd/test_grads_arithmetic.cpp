// gradcheck of the arithmetic ops beyond the op registry (tests/ops, which
// gradchecks every binary, scalar and matmul entry): constant operands, one
// variable on both sides, operators with scalars, and shape errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "grad_test_helpers.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

namespace {

// Divisors stay away from zero: |b| in [0.5, 2).
Variable divisor(const Shape& shape) {
  Variable magnitude = uniform_input(shape, 0.5, 2.0);
  Variable sign = input_away_from(shape, {0.0}, 1.0, 0.1);
  std::vector<double> values = magnitude.data().to_vector<double>();
  const std::vector<double> signs = sign.data().to_vector<double>();
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = signs[i] < 0 ? -values[i] : values[i];
  return Variable(from_vector(values, shape), true);
}

}  // namespace

TEST_CASE("binary ops with one constant operand") {
  const Fn mul_fn = [](const std::vector<Variable>& in) { return in[0] * in[1]; };
  const Fn div_fn = [](const std::vector<Variable>& in) { return in[0] / in[1]; };
  CHECK_GRADIENTS(mul_fn, {random_input({4, 3}), random_input({3}, false)});
  CHECK_GRADIENTS(mul_fn, {random_input({4, 3}, false), random_input({3})});
  CHECK_GRADIENTS(div_fn, {random_input({2, 3}, false), divisor({2, 3})});
  Variable b = divisor({3});
  b.set_requires_grad(false);
  CHECK_GRADIENTS(div_fn, {random_input({2, 3}), b});
}

TEST_CASE("a variable on both sides of a binary op") {
  const Fn square = [](const std::vector<Variable>& in) { return in[0] * in[0]; };
  const Fn ratio = [](const std::vector<Variable>& in) { return (in[0] + in[1]) / in[1]; };
  CHECK_GRADIENTS(square, {random_input({3, 2})});
  CHECK_GRADIENTS(ratio, {random_input({3, 2}), divisor({2})});
}

TEST_CASE("operators with a scalar") {
  const Fn expression = [](const std::vector<Variable>& in) {
    return (2.0 * in[0] + 1.0) * (in[0] - 0.5) / 4.0 - (3.0 - in[0] * 1.5) + (0.25 + in[0]);
  };
  CHECK_GRADIENTS(expression, {random_input({3, 2})});
  Variable x(from_vector<double>({1.0, 2.0}), true);
  CHECK((3.0 - x).data().to_vector<double>() == std::vector<double>{2.0, 1.0});
  CHECK((x / 4.0).data().to_vector<double>() == std::vector<double>{0.25, 0.5});
}

TEST_CASE("matmul with a constant operand") {
  const Fn matmul_fn = [](const std::vector<Variable>& in) { return matmul(in[0], in[1]); };
  // Broadcast batches with one side constant: each gradient keeps its operand's shape.
  CHECK_GRADIENTS(matmul_fn, {random_input({2, 4, 3}, false), random_input({3, 2})});
  CHECK_GRADIENTS(matmul_fn, {random_input({2, 1, 4, 3}), random_input({3, 3, 2}, false)});
  // A constant operand (the data batch of a first layer) gets no gradient work.
  CHECK_GRADIENTS(matmul_fn, {random_input({4, 3}, false), random_input({3, 2})});
  CHECK_GRADIENTS(matmul_fn, {random_input({4, 3}), random_input({3, 2}, false)});
}

TEST_CASE("bad shapes are reported by the op") {
  CHECK_THROWS_AS(random_input({2, 3}) + random_input({4}), ShapeError);
  CHECK_THROWS_AS(matmul(random_input({2, 3}), random_input({4, 2})), ShapeError);
  CHECK_THROWS_AS(add(Variable(), random_input({1})), ValueError);
}

TEST_CASE("maximum and minimum: ties send the gradient to the first operand") {
  const std::vector<double> g = {1.0, 2.0, 3.0, 4.0};
  for (const bool is_max : {true, false}) {
    INFO(std::string(is_max ? "maximum" : "minimum"));
    Variable a(from_vector<double>({1.0, 2.0, 3.0, -1.0}), true);
    Variable b(from_vector<double>({1.0, 5.0, 0.0, -1.0}), true);
    (is_max ? maximum(a, b) : minimum(a, b)).backward(from_vector<double>(g));
    // Elements 0 and 3 tie; b is larger at 1, smaller at 2.
    const std::vector<double> to_a = is_max ? std::vector<double>{1.0, 0.0, 3.0, 4.0}
                                            : std::vector<double>{1.0, 2.0, 0.0, 4.0};
    const std::vector<double> to_b = is_max ? std::vector<double>{0.0, 2.0, 0.0, 0.0}
                                            : std::vector<double>{0.0, 0.0, 3.0, 0.0};
    CHECK(a.grad().to_vector<double>() == to_a);
    CHECK(b.grad().to_vector<double>() == to_b);
  }
  // Broadcast operands, one of them constant.
  const Fn max_fn = [](const std::vector<Variable>& in) { return maximum(in[0], in[1]); };
  const Fn min_fn = [](const std::vector<Variable>& in) { return minimum(in[0], in[1]); };
  CHECK_GRADIENTS(max_fn, {random_input({4, 3}), random_input({3}, false)});
  CHECK_GRADIENTS(min_fn, {random_input({4, 1}, false), random_input({1, 3})});
  CHECK_THROWS_AS(maximum(random_input({2, 3}), random_input({4})), ShapeError);
}
