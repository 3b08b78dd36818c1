// gradcheck beyond the op registry (tests/ops gradchecks every elementwise,
// reduce and softmax entry): relu6's clipped gradient, reduction corner cases
// and the shape ops.
#include <doctest/doctest.h>

#include <vector>

#include "grad_test_helpers.hpp"
#include "kernels/ops.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

TEST_CASE("relu6 has no gradient where it clips") {
  // The derivative is 0 where the input is clipped.
  Variable x(from_vector<double>({-1.0, 0.5, 3.0, 7.0}), true);
  relu6(x).backward(ones({4}, DType::Float64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0.0, 1.0, 1.0, 0.0});
}

TEST_CASE("abs, clamp and leaky_relu at their kinks") {
  // abs: sign(x), 0 at 0; clamp: 1 inside with the bounds included, 0 outside.
  Variable x(from_vector<double>({-2.0, -1.0, 0.0, 0.5, 1.0, 3.0}), true);
  abs(x).backward(ones({6}, DType::Float64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{-1.0, -1.0, 0.0, 1.0, 1.0, 1.0});
  Variable y(from_vector<double>({-2.0, -1.0, 0.0, 0.5, 1.0, 3.0}), true);
  clamp(y, -1.0, 1.0).backward(ones({6}, DType::Float64));
  CHECK(y.grad().to_vector<double>() == std::vector<double>{0.0, 1.0, 1.0, 1.0, 1.0, 0.0});
  // leaky_relu: the slope at 0 and below, 1 above; default slope 0.2 (keras.ops).
  Variable z(from_vector<double>({-2.0, 0.0, 3.0}), true);
  Variable out = leaky_relu(z);
  CHECK(out.data().to_vector<double>() == std::vector<double>{-0.4, 0.0, 3.0});
  out.backward(ones({3}, DType::Float64));
  CHECK(z.grad().to_vector<double>() == std::vector<double>{0.2, 0.2, 1.0});
  Variable w(from_vector<double>({-2.0, 3.0}), true);
  leaky_relu(w, 0.0).backward(ones({2}, DType::Float64));
  CHECK(w.grad().to_vector<double>() == std::vector<double>{0.0, 1.0});
}

TEST_CASE("gelu, silu and softplus known values") {
  const std::vector<double> gelu_values = ops::gelu(from_vector<double>({-1.0, 0.0, 1.0})).to_vector<double>();
  CHECK(gelu_values[0] == doctest::Approx(-0.15865525393145707).epsilon(1e-14));
  CHECK(gelu_values[1] == 0.0);
  CHECK(gelu_values[2] == doctest::Approx(0.8413447460685429).epsilon(1e-14));
  CHECK(ops::silu(from_vector<double>({1.0})).item<double>() == doctest::Approx(0.7310585786300049).epsilon(1e-14));
  // softplus: no overflow for large inputs, no underflow to log(1) = 0 loss of the tail.
  const std::vector<float> sp = ops::softplus(from_vector<float>({-100.0f, 0.0f, 100.0f})).to_vector<float>();
  CHECK(sp[0] == doctest::Approx(3.720076e-44).epsilon(1e-3));
  CHECK(sp[1] == doctest::Approx(0.6931472f));
  CHECK(sp[2] == 100.0f);
}

TEST_CASE("sum and mean: axes in any order, size-1 rows, bad axes") {
  const Fn unordered = [](const std::vector<Variable>& in) { return sum(in[0], {2, 0}, true); };
  CHECK_GRADIENTS(unordered, {random_input({2, 3, 5})});
  const Fn row_mean = [](const std::vector<Variable>& in) { return mean(in[0], {0}); };
  CHECK_GRADIENTS(row_mean, {random_input({1, 6})});
  CHECK_THROWS_AS(sum(random_input({2, 3}), {2}), IndexError);
  CHECK_THROWS_AS(sum(random_input({2, 3}), {1, -1}), IndexError);
}

TEST_CASE("max and min: the gradient goes to the first extreme element; variance is biased") {
  // Columns of [[1, 5, 2], [5, 0, 2]]: ties in the first and last column.
  Variable x(from_vector<double>({1.0, 5.0, 2.0, 5.0, 0.0, 2.0}, {2, 3}), true);
  max(x, {0}).backward(ones({3}, DType::Float64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0.0, 1.0, 1.0, 1.0, 0.0, 0.0});
  Variable y(from_vector<double>({1.0, 5.0, 2.0, 5.0, 0.0, 2.0}, {2, 3}), true);
  max(y).backward(from_vector<double>({3.0}, {}));  // over everything: the first 5
  CHECK(y.grad().to_vector<double>() == std::vector<double>{0.0, 3.0, 0.0, 0.0, 0.0, 0.0});
  Variable z(from_vector<double>({1.0, 5.0, 2.0, 5.0, 0.0, 2.0}, {2, 3}), true);
  Variable m = min(z, {1}, true);
  CHECK(m.shape() == Shape{2, 1});
  CHECK(m.data().to_vector<double>() == std::vector<double>{1.0, 0.0});
  m.backward(ones({2, 1}, DType::Float64));
  CHECK(z.grad().to_vector<double>() == std::vector<double>{1.0, 0.0, 0.0, 0.0, 1.0, 0.0});
  // Biased: the mean of the squared deviations ([1, 2, 3, 4] -> 1.25).
  CHECK(variance(Variable(from_vector<double>({1.0, 2.0, 3.0, 4.0}), false)).data().item<double>() == 1.25);
  const Fn var_axes = [](const std::vector<Variable>& in) { return variance(in[0], {0, 2}, true); };
  CHECK_GRADIENTS(var_axes, {random_input({3, 1, 4})});
  CHECK_THROWS_AS(max(random_input({2, 3}), {2}), IndexError);
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

TEST_CASE("concat: constant inputs get no gradient, each other input its slice") {
  Variable a(from_vector<double>({1.0, 2.0, 3.0, 4.0}, {2, 2}), true);
  Variable b(from_vector<double>({5.0, 6.0}, {2, 1}), false);
  Variable c(from_vector<double>({7.0, 8.0}, {2, 1}), true);
  Variable y = concat({a, b, c}, -1);
  CHECK(y.shape() == Shape{2, 4});
  y.backward(from_vector<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, {2, 4}));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1.0, 2.0, 5.0, 6.0});
  CHECK(!b.has_grad());
  CHECK(c.grad().to_vector<double>() == std::vector<double>{4.0, 8.0});
  // The same variable twice sums its two slices.
  const Fn twice = [](const std::vector<Variable>& in) { return concat({in[0], in[0]}, 0) * in[1]; };
  CHECK_GRADIENTS(twice, {random_input({2, 3}), random_input({4, 3})});
  CHECK_THROWS_AS(concat({random_input({2, 3}), random_input({2, 4})}, 0), ShapeError);
  CHECK_THROWS_AS(concat({random_input({2, 3}), Variable()}, 0), ValueError);
}

TEST_CASE("split parts, slices and stack: each gradient lands in its own range") {
  Variable x(from_vector<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {6}), true);
  const std::vector<Variable> parts = split(x, {2, 3, 1}, 0);
  REQUIRE(parts.size() == 3);
  CHECK(parts[1].data().to_vector<double>() == std::vector<double>{3.0, 4.0, 5.0});
  // Two parts used, one of them twice; the third unused.
  (sum(parts[0]) * 2.0 + sum(parts[2] * parts[2])).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2.0, 2.0, 0.0, 0.0, 0.0, 12.0});
  Variable y(from_vector<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}, {7}), true);
  slice(y, 0, -6, 7, 2).backward(from_vector<double>({10.0, 20.0, 30.0}));
  CHECK(y.grad().to_vector<double>() == std::vector<double>{0.0, 10.0, 0.0, 20.0, 0.0, 30.0, 0.0});
  Variable a(from_vector<double>({1.0, 2.0}), true), b(from_vector<double>({3.0, 4.0}), false);
  Variable s = stack({a, b}, 1);
  CHECK(s.shape() == Shape{2, 2});
  CHECK(s.data().to_vector<double>() == std::vector<double>{1.0, 3.0, 2.0, 4.0});
  s.backward(from_vector<double>({1.0, 2.0, 3.0, 4.0}, {2, 2}));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1.0, 3.0});
  CHECK(!b.has_grad());
  CHECK_THROWS_AS(slice(random_input({3}), 0, 0, 3, 0), ValueError);
  CHECK_THROWS_AS(permute(random_input({2, 3}), {0, 0}), Error);
}

TEST_CASE("take and embedding: repeated indices accumulate; the embedding gradient is dense") {
  Variable table(from_vector<double>({0.0, 1.0, 10.0, 11.0, 20.0, 21.0}, {3, 2}), true);
  const Tensor ids = from_vector<std::int64_t>({2, 0, 2, 2}, {2, 2});
  Variable rows = embedding(table, ids);
  CHECK(rows.shape() == Shape{2, 2, 2});
  CHECK(rows.data().to_vector<double>() == std::vector<double>{20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 20.0, 21.0});
  rows.backward(ones({2, 2, 2}, DType::Float64));
  CHECK(table.grad().shape() == Shape{3, 2});
  CHECK(table.grad().to_vector<double>() == std::vector<double>{1.0, 1.0, 0.0, 0.0, 3.0, 3.0});
  Variable x(from_vector<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}), true);
  Variable t = take(x, from_vector<std::int64_t>({-1, 0, 2}), 1);  // -1 is the last column
  CHECK(t.data().to_vector<double>() == std::vector<double>{3.0, 1.0, 3.0, 6.0, 4.0, 6.0});
  t.backward(ones({2, 3}, DType::Float64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1.0, 0.0, 2.0, 1.0, 0.0, 2.0});
}

TEST_CASE("where: the gradient goes to a where the mask is set, to b elsewhere, summed over broadcasts") {
  const Tensor mask = from_vector<std::uint8_t>({1, 0, 1}, {3});
  Variable a(from_vector<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}), true);
  Variable b(from_vector<double>({-1.0}, {1}), true);
  Variable y = where(mask, a, b);
  CHECK(y.data().to_vector<double>() == std::vector<double>{1.0, -1.0, 3.0, 4.0, -1.0, 6.0});
  y.backward(from_vector<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1.0, 0.0, 3.0, 4.0, 0.0, 6.0});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{7.0});
}
