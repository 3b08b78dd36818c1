// The softmax family beyond the op registry (tests/ops runs every softmax,
// log_softmax, backward and fused cross-entropy entry against its reference
// on every ISA): logits like +-1000 with ties, finite results, exact losses.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/kernels/ops_test_support.hpp"
#include "tests/ops/op_registry.hpp"

using namespace petal;
using petal::test::check_close;
using petal::test::for_each_isa_and_threads;
using petal::test::reference_log_softmax;

namespace {

std::vector<double> exp_all(std::vector<double> v) {
  for (double& x : v) x = std::exp(x);
  return v;
}

}  // namespace

TEST_CASE("softmax is stable for logits like +-1000") {
  const Tensor a = from_vector<float>({1000, -1000, 999, 0, 1000, 1000, -1000, -1000}, {2, 4});
  const std::vector<double> expected_log = reference_log_softmax(a);
  for_each_isa_and_threads([&] {
    const std::vector<float> y = ops::softmax(a).to_vector<float>();
    for (float v : y) CHECK(std::isfinite(v));
    check_close(ops::softmax(a), exp_all(expected_log), 1e-5, 1e-7);
    const std::vector<float> log_y = ops::log_softmax(a).to_vector<float>();
    for (float v : log_y) CHECK(std::isfinite(v));
    check_close(ops::log_softmax(a), expected_log, 1e-5, 1e-4);
  });
}

TEST_CASE("softmax_cross_entropy is stable for logits like +-1000") {
  const Tensor logits = from_vector<float>({1000, -1000, 0, -1000, 1000, 999, 1000, 1000, 1000}, {3, 3});
  const Tensor labels = from_vector<std::int64_t>({0, 0, 2});
  // Row 0: the right class dominates, loss ~ 0. Row 1: the right class is
  // 2000 below the best, loss = 2000 + log(1 + e^-1). Row 2: uniform, log 3.
  const std::vector<double> expected = {0.0, 2000.0 + std::log1p(std::exp(-1.0)), std::log(3.0)};
  for_each_isa_and_threads([&] {
    Tensor probs;
    const Tensor loss = ops::softmax_cross_entropy(logits, labels, &probs);
    check_close(loss, expected, 1e-6, 1e-6);
    for (float p : probs.to_vector<float>()) CHECK(std::isfinite(p));
    const Tensor onehot = from_vector<float>({1, 0, 0, 1, 0, 0, 0, 0, 1}, {3, 3});
    check_close(ops::softmax_cross_entropy(logits, onehot), expected, 1e-6, 1e-6);
    const Tensor grad = ops::softmax_cross_entropy_backward(ones({3}), probs, labels);
    for (float v : grad.to_vector<float>()) CHECK(std::isfinite(v));
  });
}

