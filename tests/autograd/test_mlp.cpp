// End to end: a two-layer MLP trained a few steps in float32, with gradients
// that match the float64 tape, which itself passes gradcheck.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "grad_test_helpers.hpp"
#include "kernels/ops.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

namespace {

// x [N, 4] -> dense(6) relu -> dense(3) -> softmax cross-entropy.
Variable mlp_loss(const Variable& x, const std::vector<Variable>& params, const Tensor& labels) {
  const Variable hidden = relu(matmul(x, params[0]) + params[1]);  // [N, 6]
  const Variable logits = matmul(hidden, params[2]) + params[3];   // [N, 3]
  return softmax_cross_entropy(logits, labels);
}

std::vector<Variable> float64_params() {
  Generator gen(7);
  return {Variable(normal({4, 6}, 0.0, 0.5, gen, DType::Float64), true),
          Variable(normal({6}, 0.0, 0.1, gen, DType::Float64), true),
          Variable(normal({6, 3}, 0.0, 0.5, gen, DType::Float64), true),
          Variable(normal({3}, 0.0, 0.1, gen, DType::Float64), true)};
}

std::vector<Variable> as_float32(const std::vector<Variable>& params) {
  std::vector<Variable> out;
  for (const Variable& p : params) out.emplace_back(p.data().to(DType::Float32), true);
  return out;
}

}  // namespace

TEST_CASE("a 2-layer MLP: float32 gradients match the float64 ones, which pass gradcheck") {
  Generator gen(11);
  const Tensor x64 = normal({5, 4}, 0.0, 1.0, gen, DType::Float64);
  const Tensor labels = from_vector<std::int64_t>({0, 2, 1, 1, 0});
  const std::vector<Variable> params64 = float64_params();

  const Fn loss_fn = [&](const std::vector<Variable>& p) { return mlp_loss(Variable(x64), p, labels); };
  CHECK_GRADIENTS(loss_fn, params64);

  mlp_loss(Variable(x64), params64, labels).backward();
  const std::vector<Variable> params32 = as_float32(params64);
  const Variable loss32 = mlp_loss(Variable(x64.to(DType::Float32)), params32, labels);
  CHECK(loss32.dtype() == DType::Float32);
  loss32.backward();
  for (std::size_t i = 0; i < params64.size(); ++i) {
    CAPTURE(i);
    REQUIRE(params32[i].has_grad());
    CHECK(params32[i].grad().dtype() == DType::Float32);
    const std::vector<double> want = params64[i].grad().to_vector<double>();
    const std::vector<double> got = params32[i].grad().to_vector<double>();
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-4).scale(1.0));
  }
}

TEST_CASE("a 2-layer MLP learns: plain SGD in float32 lowers the loss") {
  Generator gen(3);
  const Tensor x = normal({8, 4}, 0.0, 1.0, gen, DType::Float32);
  const Tensor labels = from_vector<std::int64_t>({0, 1, 2, 0, 1, 2, 0, 1});
  std::vector<Variable> params = as_float32(float64_params());
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 30; ++step) {
    const Variable loss = mlp_loss(Variable(x), params, labels);
    if (step == 0) first = loss.data().item<double>();
    last = loss.data().item<double>();
    for (Variable& p : params) p.zero_grad();
    loss.backward();
    NoGradGuard no_grad;
    for (Variable& p : params) ops::add_(p.mutable_data(), p.grad(), -0.5);
  }
  CHECK(std::isfinite(last));
  CHECK(last < 0.7 * first);
}
