// gradcheck of the arithmetic ops: broadcasting binary ops, scalar ops, matmul.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "grad_test_helpers.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

namespace {

struct ShapePair {
  Shape a, b;
};

// Same shapes, batch 1, odd sizes, and broadcasting in either direction,
// including a rank difference and size-1 axes on both sides.
const std::vector<ShapePair> kBinaryShapes = {
    {{3, 5}, {3, 5}}, {{1, 7}, {1, 7}},    {{4, 3}, {3}},       {{3}, {4, 3}},
    {{2, 1, 5}, {3, 1}}, {{1}, {3, 5}}, {{2, 3, 1}, {1, 1, 4}}, {{5, 1}, {1}},
};

std::string shapes_label(const ShapePair& p) { return shape_str(p.a) + " and " + shape_str(p.b); }

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

TEST_CASE("add, sub, mul and div: gradients reduced back to broadcast input shapes") {
  const Fn add_fn = [](const std::vector<Variable>& in) { return in[0] + in[1]; };
  const Fn sub_fn = [](const std::vector<Variable>& in) { return in[0] - in[1]; };
  const Fn mul_fn = [](const std::vector<Variable>& in) { return in[0] * in[1]; };
  const Fn div_fn = [](const std::vector<Variable>& in) { return in[0] / in[1]; };
  for (const ShapePair& shapes : kBinaryShapes) {
    CAPTURE(shapes_label(shapes));
    CHECK_GRADIENTS(add_fn, {random_input(shapes.a), random_input(shapes.b)});
    CHECK_GRADIENTS(sub_fn, {random_input(shapes.a), random_input(shapes.b)});
    CHECK_GRADIENTS(mul_fn, {random_input(shapes.a), random_input(shapes.b)});
    CHECK_GRADIENTS(div_fn, {random_input(shapes.a), divisor(shapes.b)});
  }
}

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

TEST_CASE("neg and the scalar ops") {
  const Fn neg_fn = [](const std::vector<Variable>& in) { return -in[0]; };
  const Fn add_s = [](const std::vector<Variable>& in) { return add_scalar(in[0], 2.5); };
  const Fn mul_s = [](const std::vector<Variable>& in) { return mul_scalar(in[0], -1.75); };
  const Fn pow_frac = [](const std::vector<Variable>& in) { return pow_scalar(in[0], 2.5); };
  const Fn pow_neg = [](const std::vector<Variable>& in) { return pow_scalar(in[0], -1.0); };
  const Fn pow_int = [](const std::vector<Variable>& in) { return pow_scalar(in[0], 3.0); };
  for (const Shape& shape : {Shape{1}, Shape{5}, Shape{3, 7}}) {
    CAPTURE(shape_str(shape));
    CHECK_GRADIENTS(neg_fn, {random_input(shape)});
    CHECK_GRADIENTS(add_s, {random_input(shape)});
    CHECK_GRADIENTS(mul_s, {random_input(shape)});
    CHECK_GRADIENTS(pow_frac, {uniform_input(shape, 0.5, 2.0)});
    CHECK_GRADIENTS(pow_neg, {uniform_input(shape, 0.5, 2.0)});
    CHECK_GRADIENTS(pow_int, {random_input(shape)});
  }
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

TEST_CASE("matmul, 2-D and batched 3-D") {
  const Fn matmul_fn = [](const std::vector<Variable>& in) { return matmul(in[0], in[1]); };
  CHECK_GRADIENTS(matmul_fn, {random_input({3, 5}), random_input({5, 4})});
  CHECK_GRADIENTS(matmul_fn, {random_input({1, 7}), random_input({7, 3})});
  CHECK_GRADIENTS(matmul_fn, {random_input({6, 1}), random_input({1, 2})});
  CHECK_GRADIENTS(matmul_fn, {random_input({2, 3, 4}), random_input({2, 4, 5})});
  CHECK_GRADIENTS(matmul_fn, {random_input({1, 2, 3}), random_input({1, 3, 1})});
  // A constant operand (the data batch of a first layer) gets no gradient work.
  CHECK_GRADIENTS(matmul_fn, {random_input({4, 3}, false), random_input({3, 2})});
  CHECK_GRADIENTS(matmul_fn, {random_input({4, 3}), random_input({3, 2}, false)});
}

TEST_CASE("matmul of a transposed (non-contiguous) operand") {
  const Fn fn = [](const std::vector<Variable>& in) { return matmul(transpose(in[0], 0, 1), in[1]); };
  CHECK_GRADIENTS(fn, {random_input({5, 3}), random_input({5, 2})});
}

TEST_CASE("bad shapes are reported by the op") {
  CHECK_THROWS_AS(random_input({2, 3}) + random_input({4}), ShapeError);
  CHECK_THROWS_AS(matmul(random_input({2, 3}), random_input({4, 2})), ShapeError);
  CHECK_THROWS_AS(add(Variable(), random_input({1})), ValueError);
}
