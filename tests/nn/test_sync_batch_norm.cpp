// Synchronised batch normalization (nn/sync_batch_norm.hpp) in one process,
// against a replica context that stands for k replicas holding the same
// samples (its sums multiply by k): the global statistics are then the local
// ones, so the op must equal plain training-mode batch norm, forward and
// backward, with the moving variance's unbiasing over k times the samples;
// and finite differences with one replica. The real thing (2 MPI ranks
// against 1 process) is in tests/distributed.
#include <doctest/doctest.h>

#include <cmath>
#include <span>
#include <vector>

#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "nn/nn.hpp"
#include "nn/sync_batch_norm.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

class IdenticalReplicas : public ReplicaContext {
 public:
  explicit IdenticalReplicas(int k) : k_(k) {}
  int replica() const override { return 0; }
  int replicas() const override { return k_; }
  void sum(std::span<double> values) override {
    ++sums;
    for (double& v : values) v *= k_;
  }
  void begin_gradients(const std::vector<ag::Variable>&, double) override {}
  void finish_gradients() override {}
  double gradient_scale() const override { return 1.0 / k_; }
  int sums = 0;

 private:
  int k_;
};

Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::Float32) {
  Generator gen(seed);
  return uniform(shape, -2.0, 3.0, gen).to(dtype);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

}  // namespace

TEST_CASE("sync_batch_norm over identical replicas equals training-mode batch norm, forward and backward") {
  for (int k : {1, 3}) {
    CAPTURE(k);
    auto replicas = std::make_shared<IdenticalReplicas>(k);
    const Shape shape{5, 3, 2, 4};
    const Tensor xd = random_tensor(shape, 1), weights = random_tensor(shape, 2);
    ag::Variable x(xd, true), gamma(random_tensor({4}, 3), true), beta(random_tensor({4}, 4), true);
    ag::Variable x2(xd, true), gamma2(gamma.data().clone(), true), beta2(beta.data().clone(), true);
    Tensor mm = zeros({4}), mv = ones({4}), mm2 = zeros({4}), mv2 = ones({4});
    ag::BatchNormOptions options;
    options.training = true;
    options.momentum = 0.9;
    const ag::Variable y = sync_batch_norm(x, gamma, beta, mm, mv, 0.9, 1e-3, replicas);
    const ag::Variable y2 = ag::batch_norm(x2, gamma2, beta2, mm2, mv2, options);
    CHECK(max_abs_diff(y.data(), y2.data()) <= 2e-6);
    ag::sum(ag::mul(y, ag::Variable(weights))).backward();
    ag::sum(ag::mul(y2, ag::Variable(weights))).backward();
    CHECK(max_abs_diff(x.grad(), x2.grad()) <= 2e-5);
    CHECK(max_abs_diff(gamma.grad(), gamma2.grad()) <= 2e-4);
    CHECK(max_abs_diff(beta.grad(), beta2.grad()) <= 2e-4);
    CHECK(replicas->sums == 3);  // mean, variance, then the backward's sums
    CHECK(max_abs_diff(mm, mm2) <= 1e-6);
    // The moving variance is unbiased over all k * n samples.
    const double n = 5 * 3 * 2;
    const std::vector<double> local = mv2.to_vector<double>(), got = mv.to_vector<double>();
    for (int c = 0; c < 4; ++c) {
      const double biased = (local[static_cast<std::size_t>(c)] - 0.9) / 0.1 * (n - 1) / n;
      CHECK(got[static_cast<std::size_t>(c)] == doctest::Approx(0.9 + 0.1 * biased * (k * n) / (k * n - 1)).epsilon(1e-5));
    }
  }
}

TEST_CASE("sync_batch_norm's gradients match finite differences") {
  auto replicas = std::make_shared<IdenticalReplicas>(1);
  const std::vector<ag::Variable> inputs = {ag::Variable(random_tensor({4, 3, 3}, 5, DType::Float64), true),
                                            ag::Variable(random_tensor({3}, 6, DType::Float64), true),
                                            ag::Variable(random_tensor({3}, 7, DType::Float64), true)};
  Tensor mm = zeros({3}, DType::Float64), mv = ones({3}, DType::Float64);
  const ag::GradcheckResult result = ag::gradcheck(
      [&](const std::vector<ag::Variable>& in) { return sync_batch_norm(in[0], in[1], in[2], mm, mv, 0.9, 1e-3, replicas); },
      inputs);
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("BatchNormalization(synchronized) synchronises only in training with several replicas") {
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{3, 3, 2}), std::make_shared<Conv2D>(4, 3, ConvOptions{.padding = Padding::Same}),
      std::make_shared<BatchNormalization>(BatchNormOptions{.synchronized = true}), std::make_shared<ReLU>(6.0)});
  model->train();
  const ag::Variable x(random_tensor({6, 3, 3, 2}, 8));
  const Tensor alone = (*model)(x).data();
  auto one = std::make_shared<IdenticalReplicas>(1), two = std::make_shared<IdenticalReplicas>(2);
  {
    ReplicaScope scope(one);
    CHECK(max_abs_diff((*model)(x).data(), alone) == 0.0);
    CHECK(one->sums == 0);
  }
  {
    ReplicaScope scope(two);
    CHECK(ReplicaContext::current() == two);
    CHECK(max_abs_diff((*model)(x).data(), alone) <= 2e-5);
    CHECK(two->sums == 2);
    model->eval();
    (*model)(x);
    CHECK(two->sums == 2);  // inference: the moving statistics, nothing to sum
  }
  CHECK(ReplicaContext::current() == nullptr);
}
