// gradcheck of the activations and elementwise functions, the reductions and
// the shape ops.
#include <doctest/doctest.h>

#include <vector>

#include "grad_test_helpers.hpp"
#include "kernels/ops.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

namespace {

const std::vector<Shape> kShapes = {{1}, {7}, {1, 5}, {3, 4}, {2, 3, 5}};

}  // namespace

TEST_CASE("relu and relu6, away from their kinks") {
  const Fn relu_fn = [](const std::vector<Variable>& in) { return relu(in[0]); };
  const Fn relu6_fn = [](const std::vector<Variable>& in) { return relu6(in[0]); };
  for (const Shape& shape : kShapes) {
    CAPTURE(shape_str(shape));
    CHECK_GRADIENTS(relu_fn, {input_away_from(shape, {0.0}, 2.0)});
    // Spans both sides of 0 and of 6.
    Variable x = input_away_from(shape, {0.0}, 4.0);
    Variable shifted = Variable(ops::add_scalar(x.data(), 3.0), true);
    CHECK_GRADIENTS(relu6_fn, {shifted});
  }
  // The derivative is 0 where the input is clipped.
  Variable x(from_vector<double>({-1.0, 0.5, 3.0, 7.0}), true);
  relu6(x).backward(ones({4}, DType::Float64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0.0, 1.0, 1.0, 0.0});
}

TEST_CASE("sigmoid, tanh, exp, log and sqrt") {
  const Fn sigmoid_fn = [](const std::vector<Variable>& in) { return sigmoid(in[0]); };
  const Fn tanh_fn = [](const std::vector<Variable>& in) { return tanh(in[0]); };
  const Fn exp_fn = [](const std::vector<Variable>& in) { return exp(in[0]); };
  const Fn log_fn = [](const std::vector<Variable>& in) { return log(in[0]); };
  const Fn sqrt_fn = [](const std::vector<Variable>& in) { return sqrt(in[0]); };
  for (const Shape& shape : kShapes) {
    CAPTURE(shape_str(shape));
    CHECK_GRADIENTS(sigmoid_fn, {random_input(shape)});
    CHECK_GRADIENTS(tanh_fn, {random_input(shape)});
    CHECK_GRADIENTS(exp_fn, {random_input(shape)});
    CHECK_GRADIENTS(log_fn, {uniform_input(shape, 0.2, 3.0)});
    CHECK_GRADIENTS(sqrt_fn, {uniform_input(shape, 0.2, 3.0)});
  }
}

TEST_CASE("sum and mean over all axes, chosen axes, negative axes, with and without keepdim") {
  struct Reduction {
    Axes axes;
    bool keepdim;
  };
  const std::vector<Reduction> reductions = {
      {{}, false}, {{}, true}, {{1}, false}, {{1}, true}, {{0, 2}, false}, {{-1}, true}, {{2, 0}, true}, {{0, 1, 2}, false},
  };
  for (const Reduction& r : reductions) {
    CAPTURE(shape_str(r.axes));
    CAPTURE(r.keepdim);
    const Fn sum_fn = [&r](const std::vector<Variable>& in) { return sum(in[0], r.axes, r.keepdim); };
    const Fn mean_fn = [&r](const std::vector<Variable>& in) { return mean(in[0], r.axes, r.keepdim); };
    CHECK_GRADIENTS(sum_fn, {random_input({2, 3, 5})});
    CHECK_GRADIENTS(mean_fn, {random_input({2, 3, 5})});
    CHECK_GRADIENTS(mean_fn, {random_input({1, 1, 3})});
  }
  const Fn row_mean = [](const std::vector<Variable>& in) { return mean(in[0], {0}); };
  CHECK_GRADIENTS(row_mean, {random_input({1, 6})});
  CHECK_THROWS_AS(sum(random_input({2, 3}), {2}), IndexError);
  CHECK_THROWS_AS(sum(random_input({2, 3}), {1, -1}), IndexError);
}

TEST_CASE("reshape, flatten and transpose") {
  const Fn reshape_fn = [](const std::vector<Variable>& in) { return reshape(in[0], {3, -1}); };
  const Fn flatten_fn = [](const std::vector<Variable>& in) { return flatten(in[0]); };
  const Fn flatten_all = [](const std::vector<Variable>& in) { return flatten(in[0], 0); };
  const Fn transpose_fn = [](const std::vector<Variable>& in) { return transpose(in[0], 0, 2); };
  // Transposed views fed into ops that read strided inputs, then reshaped (a copy).
  const Fn chain = [](const std::vector<Variable>& in) {
    return reshape(tanh(transpose(in[0], 1, -1)), {2, -1}) * in[1];
  };
  CHECK_GRADIENTS(reshape_fn, {random_input({2, 3, 2})});
  CHECK_GRADIENTS(flatten_fn, {random_input({2, 3, 2, 2})});
  CHECK_GRADIENTS(flatten_fn, {random_input({1, 5})});
  CHECK_GRADIENTS(flatten_all, {random_input({3, 2})});
  CHECK_GRADIENTS(transpose_fn, {random_input({2, 3, 4})});
  CHECK_GRADIENTS(chain, {random_input({2, 3, 5}), random_input({15})});

  CHECK(flatten(random_input({2, 3, 4}), 1).shape() == Shape{2, 12});
  CHECK(flatten(random_input({2, 3, 4}), 2).shape() == Shape{2, 3, 4});
  CHECK_THROWS_AS(reshape(random_input({2, 3}), {4}), ShapeError);
}
