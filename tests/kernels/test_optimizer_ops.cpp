// The fused optimizer ops against the loops nn/optimizers.cpp used before
// they existed (copied here as the reference): results must be
// bit-identical, over several steps, with and without momentum, Nesterov,
// weight decay, and on both sides of the thread-pool grain. RMSprop and
// Adagrad, which nn never had as loops, against double-precision loops of
// Keras 3's formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <tuple>
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

// ---- RMSprop and Adagrad against plain double-precision loops (Keras 3's
// formulas), several steps, odd sizes on both sides of the thread-pool grain ----
namespace {

struct RmspropCase {
  double rho, momentum, epsilon;
  bool centered;
  double weight_decay;
};

void reference_rmsprop(std::vector<double>& w, const std::vector<float>& g, std::vector<double>& vel,
                       std::vector<double>& mom, std::vector<double>& avg, double lr, const RmspropCase& c) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double gi = g[i];
    if (c.weight_decay > 0) w[i] -= w[i] * c.weight_decay * lr;
    vel[i] = c.rho * vel[i] + (1 - c.rho) * gi * gi;
    double denominator = vel[i] + c.epsilon;
    if (c.centered) {
      avg[i] = c.rho * avg[i] + (1 - c.rho) * gi;
      denominator = vel[i] - avg[i] * avg[i] + c.epsilon;
    }
    const double increment = lr * gi / std::sqrt(denominator);
    if (c.momentum > 0) {
      mom[i] = c.momentum * mom[i] + increment;
      w[i] -= mom[i];
    } else {
      w[i] -= increment;
    }
  }
}

void reference_adagrad(std::vector<double>& w, const std::vector<float>& g, std::vector<double>& acc, double lr,
                       double epsilon, double weight_decay) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double gi = g[i];
    if (weight_decay > 0) w[i] -= w[i] * weight_decay * lr;
    acc[i] += gi * gi;
    w[i] -= lr * gi / std::sqrt(acc[i] + epsilon);
  }
}

// |got - want| <= atol + rtol * |want| for every element.
void check_near(const Tensor& got, const std::vector<double>& want, double atol, double rtol, const char* what) {
  const std::vector<float> g = got.to_vector<float>();
  REQUIRE(g.size() == want.size());
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double excess = std::abs(g[i] - want[i]) - (atol + rtol * std::abs(want[i]));
    if (i == 0 || excess > worst) {
      worst = excess;
      at = i;
    }
  }
  INFO(what, ": worst element ", at, " got ", g[at], " want ", want[at]);
  CHECK(worst <= 0.0);
}

std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

}  // namespace

TEST_CASE("rmsprop_update_ follows a double-precision loop of Keras 3's RMSprop") {
  Generator gen(25);
  for (const RmspropCase& c : {RmspropCase{0.9, 0.0, 1e-7, false, 0.0}, RmspropCase{0.9, 0.9, 1e-7, false, 0.0},
                               RmspropCase{0.9, 0.0, 1e-7, true, 0.0}, RmspropCase{0.8, 0.5, 1e-3, true, 4e-3},
                               RmspropCase{0.95, 0.0, 1e-6, false, 1e-2}}) {
    for (std::int64_t n : {std::int64_t{1}, std::int64_t{37}, std::int64_t{100003}}) {
      INFO("rho ", c.rho, " momentum ", c.momentum, " epsilon ", c.epsilon, " centered ", c.centered,
           " weight decay ", c.weight_decay, " n ", n);
      const std::vector<float> w0 = random_values(n, gen);
      std::vector<double> w = widen(w0), vel(n, 0.0), mom(n, 0.0), avg(n, 0.0);
      Tensor param = from_vector<float>(w0, {n}), tvel = zeros({n});
      Tensor tmom = c.momentum != 0.0 ? zeros({n}) : Tensor();
      Tensor tavg = c.centered ? zeros({n}) : Tensor();
      for (int step = 0; step < 5; ++step) {
        const double lr = 0.01 / (step + 1);
        const std::vector<float> g = random_values(n, gen, 3.0);
        reference_rmsprop(w, g, vel, mom, avg, lr, c);
        ops::rmsprop_update_(param, from_vector<float>(g, {n}), tvel, tmom, tavg, lr, c.rho, c.momentum, c.epsilon,
                             c.centered, c.weight_decay);
      }
      check_near(param, w, 2e-6, 2e-5, "param");
      check_near(tvel, vel, 1e-6, 1e-5, "velocity");
      if (c.momentum != 0.0) check_near(tmom, mom, 1e-7, 2e-5, "momentum");
      if (c.centered) check_near(tavg, avg, 1e-6, 1e-5, "average gradient");
    }
  }
}

TEST_CASE("adagrad_update_ follows a double-precision loop of Keras 3's Adagrad") {
  Generator gen(26);
  for (const auto& [initial, epsilon, weight_decay] :
       std::vector<std::tuple<double, double, double>>{{0.1, 1e-7, 0.0}, {0.0, 1e-7, 0.0}, {0.5, 1e-3, 4e-3}}) {
    for (std::int64_t n : {std::int64_t{1}, std::int64_t{37}, std::int64_t{100003}}) {
      INFO("initial accumulator ", initial, " epsilon ", epsilon, " weight decay ", weight_decay, " n ", n);
      const std::vector<float> w0 = random_values(n, gen);
      std::vector<double> w = widen(w0), acc(n, static_cast<double>(static_cast<float>(initial)));
      Tensor param = from_vector<float>(w0, {n}), tacc = full({n}, initial);
      for (int step = 0; step < 5; ++step) {
        const double lr = 0.05 / (step + 1);
        const std::vector<float> g = random_values(n, gen, 3.0);
        reference_adagrad(w, g, acc, lr, epsilon, weight_decay);
        ops::adagrad_update_(param, from_vector<float>(g, {n}), tacc, lr, epsilon, weight_decay);
      }
      check_near(param, w, 2e-6, 2e-5, "param");
      check_near(tacc, acc, 1e-6, 1e-5, "accumulator");
    }
  }
}

TEST_CASE("rmsprop_update_ and adagrad_update_ check their operands") {
  Tensor param = zeros({4}), vel = zeros({4}), none, small = zeros({3});
  test::check_error<ValueError>(
      [&] { ops::rmsprop_update_(param, zeros({4}), vel, none, none, 0.1, 0.9, 0.9, 1e-7, false); },
      {"rmsprop_update_"});  // momentum without its buffer
  test::check_error<ValueError>(
      [&] { ops::rmsprop_update_(param, zeros({4}), vel, none, small, 0.1, 0.9, 0.0, 1e-7, true); },
      {"rmsprop_update_", "[3]"});
  test::check_error<ValueError>(
      [&] { ops::rmsprop_update_(param, zeros({4}), vel, none, none, 0.1, 0.9, 0.0, 0.0, false); },
      {"rmsprop_update_", "epsilon"});
  test::check_error<ShapeError>(
      [&] { ops::rmsprop_update_(param, zeros({5}), vel, none, none, 0.1, 0.9, 0.0, 1e-7, false); },
      {"rmsprop_update_", "[4]", "[5]"});
  test::check_error<ValueError>([&] { ops::adagrad_update_(param, zeros({4}), small, 0.1, 1e-7); },
                                {"adagrad_update_", "[3]"});
  test::check_error<DTypeError>(
      [&] { ops::adagrad_update_(param, zeros({4}, DType::Float64), vel, 0.1, 1e-7); }, {"adagrad_update_", "float64"});
  // Without momentum or centering the unused state may be undefined: it works.
  Tensor g = from_vector<float>({1.0f, -1.0f, 2.0f, 0.0f});
  ops::rmsprop_update_(param, g, vel, none, none, 0.1, 0.9, 0.0, 1e-7, false);
  CHECK(param.to_vector<float>()[0] < 0.0f);
  CHECK(param.to_vector<float>()[3] == 0.0f);
}
