// The fused optimizer ops against the loops nn/optimizers.cpp used before
// they existed (copied here as the reference): results must be
// bit-identical, over several steps, with and without momentum, Nesterov,
// weight decay, and on both sides of the thread-pool grain.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;

namespace {

// ---- the reference: nn/optimizers.cpp's loops, operation for operation ----
void reference_decay(std::vector<float>& w, double lr, double weight_decay) {
  if (weight_decay <= 0.0) return;
  const float f = static_cast<float>(1.0 - lr * weight_decay);
  for (float& x : w) x *= f;
}

void reference_sgd(std::vector<float>& w, const std::vector<float>& g, std::vector<float>& m, double lr,
                   double momentum, bool nesterov) {
  const float lrf = static_cast<float>(lr);
  if (momentum == 0.0) {
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= lrf * g[i];
    return;
  }
  const float mu = static_cast<float>(momentum);
  for (std::size_t i = 0; i < w.size(); ++i) {
    m[i] = mu * m[i] - lrf * g[i];
    w[i] += nesterov ? mu * m[i] - lrf * g[i] : m[i];
  }
}

void reference_adam(std::vector<float>& w, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
                    double lr, double beta_1, double beta_2, double epsilon, std::int64_t iterations) {
  const double t = static_cast<double>(iterations + 1);
  const float lr_t = static_cast<float>(lr * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t)));
  const float one_minus_b1 = static_cast<float>(1.0 - beta_1);
  const float one_minus_b2 = static_cast<float>(1.0 - beta_2);
  const float eps = static_cast<float>(epsilon);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float gi = g[i];
    m[i] += (gi - m[i]) * one_minus_b1;
    v[i] += (gi * gi - v[i]) * one_minus_b2;
    w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + eps);
  }
}

std::vector<float> random_values(std::int64_t n, Generator& gen, double scale = 1.0) {
  return test::random_tensor({n}, gen, DType::Float32, -scale, scale).to_vector<float>();
}

}  // namespace

TEST_CASE("sgd_update_ is bit-identical to the SGD loops of nn") {
  Generator gen(21);
  struct Case {
    double momentum;
    bool nesterov;
    double weight_decay;
  };
  for (const Case& c : {Case{0.0, false, 0.0}, Case{0.9, false, 0.0}, Case{0.9, true, 0.0}, Case{0.5, false, 1e-2},
                        Case{0.0, false, 1e-3}, Case{0.99, true, 5e-4}}) {
    for (std::int64_t n : {std::int64_t{1}, std::int64_t{37}, std::int64_t{100003}}) {
      INFO("momentum ", c.momentum, " nesterov ", c.nesterov, " weight decay ", c.weight_decay, " n ", n);
      std::vector<float> w = random_values(n, gen), m(n, 0.0f);
      Tensor param = from_vector<float>(w, {n});
      Tensor buf = c.momentum != 0.0 ? zeros({n}) : Tensor();
      for (int step = 0; step < 3; ++step) {
        const double lr = 0.05 / (step + 1);
        const std::vector<float> g = random_values(n, gen, 3.0);
        reference_decay(w, lr, c.weight_decay);
        reference_sgd(w, g, m, lr, c.momentum, c.nesterov);
        ops::sgd_update_(param, from_vector<float>(g, {n}), buf, lr, c.momentum, c.nesterov, c.weight_decay);
      }
      CHECK(param.to_vector<float>() == w);
      if (c.momentum != 0.0) CHECK(buf.to_vector<float>() == m);
    }
  }
}

TEST_CASE("adam_update_ is bit-identical to the Adam loop of nn") {
  Generator gen(22);
  for (double weight_decay : {0.0, 4e-3}) {
    for (std::int64_t n : {std::int64_t{1}, std::int64_t{129}, std::int64_t{70001}}) {
      INFO("weight decay ", weight_decay, " n ", n);
      std::vector<float> w = random_values(n, gen), m(n, 0.0f), v(n, 0.0f);
      Tensor param = from_vector<float>(w, {n}), tm = zeros({n}), tv = zeros({n});
      for (std::int64_t step = 0; step < 4; ++step) {
        const std::vector<float> g = random_values(n, gen, 2.0);
        reference_decay(w, 1e-3, weight_decay);
        reference_adam(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7, step);
        ops::adam_update_(param, from_vector<float>(g, {n}), tm, tv, 1e-3, 0.9, 0.999, 1e-7, step + 1, weight_decay);
      }
      CHECK(param.to_vector<float>() == w);
      CHECK(tm.to_vector<float>() == m);
      CHECK(tv.to_vector<float>() == v);
    }
  }
}

TEST_CASE("a strided gradient updates like its contiguous copy") {
  Generator gen(23);
  const Tensor g = test::random_tensor({6, 5}, gen).transpose(0, 1);  // [5, 6], strided
  Tensor p1 = test::random_tensor({5, 6}, gen), p2 = p1.clone();
  Tensor m1 = zeros({5, 6}), v1 = zeros({5, 6}), m2 = zeros({5, 6}), v2 = zeros({5, 6});
  ops::adam_update_(p1, g, m1, v1, 0.01, 0.9, 0.999, 1e-7, 1);
  ops::adam_update_(p2, g.contiguous(), m2, v2, 0.01, 0.9, 0.999, 1e-7, 1);
  CHECK(p1.to_vector<float>() == p2.to_vector<float>());
}

TEST_CASE("optimizer ops reject mismatched operands with the op and the shapes") {
  Tensor param = zeros({4}), buf = zeros({3}), m = zeros({4}), v = zeros({4});
  test::check_error<ShapeError>([&] { ops::sgd_update_(param, zeros({5}), buf, 0.1, 0.0, false); },
                                {"sgd_update_", "[4]", "[5]"});
  test::check_error<ValueError>([&] { ops::sgd_update_(param, zeros({4}), buf, 0.1, 0.9, false); },
                                {"sgd_update_", "[3]"});
  test::check_error<DTypeError>([&] { ops::adam_update_(param, zeros({4}, DType::Float64), m, v, 0.1, 0.9, 0.999, 1e-7, 1); },
                                {"adam_update_", "float64"});
  test::check_error<ValueError>([&] { ops::adam_update_(param, zeros({4}), m, v, 0.1, 0.9, 0.999, 1e-7, 0); },
                                {"adam_update_", "step"});
  Tensor strided = zeros({4, 2}).transpose(0, 1);
  test::check_error<ValueError>([&] { ops::sgd_update_(strided, zeros({2, 4}), buf, 0.1, 0.0, false); },
                                {"sgd_update_", "contiguous"});
}

TEST_CASE("squared_norm sums squares in double, in order") {
  Generator gen(24);
  const Tensor g = test::random_tensor({1000}, gen);
  double want = 0.0;
  for (float x : g.to_vector<float>()) want += static_cast<double>(x) * x;
  CHECK(ops::squared_norm(g) == want);
  CHECK(ops::squared_norm(g.view({10, 100}).transpose(0, 1)) == doctest::Approx(want).epsilon(1e-12));
  CHECK(ops::squared_norm(zeros({0})) == 0.0);
  CHECK(ops::squared_norm(from_vector<double>({3.0, 4.0})) == 25.0);
}

TEST_CASE("clamp_ clips in place like clipvalue and refuses broadcast views") {
  Tensor a = from_vector<float>({-5.0f, -0.25f, 0.5f, 8.0f});
  ops::clamp_(a, -1.0, 1.0);
  CHECK(a.to_vector<float>() == std::vector<float>{-1.0f, -0.25f, 0.5f, 1.0f});
  Tensor view = zeros({3}).unsqueeze(0).expand({2, 3});
  test::check_error<ValueError>([&] { ops::clamp_(view, -1.0, 1.0); }, {"clamp_", "broadcast"});
  test::check_error<ValueError>([&] { ops::clamp_(a, 1.0, -1.0); }, {"clamp_", "above"});
}
