// Optimizer updates against hand-computed double-precision values for three
// steps, in Keras's formulation (SGD, Adam, AdamW, RMSprop, Adagrad);
// clipping, weight decay and schedules (against Keras's formulas); the
// construction-time parameter list (step(), zero_grad()) against the per-step form.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/optimizers.hpp"
#include "nn/schedules.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

const std::vector<double> kStart = {1.0, -2.0, 0.5};
const std::vector<std::vector<double>> kGrads = {{0.5, -1.0, 2.0}, {-0.25, 0.75, 1.5}, {1.0, 0.1, -3.0}};

ag::Variable make_param() {
  ag::Variable w(from_vector(std::vector<float>(kStart.begin(), kStart.end())), true);
  w.set_name("layer/kernel");
  return w;
}

// Runs three steps with the gradients above and returns the weights after each.
std::vector<std::vector<float>> run(Optimizer& opt) {
  ag::Variable w = make_param();
  std::vector<std::vector<float>> out;
  for (const auto& g : kGrads) {
    w.set_grad(from_vector(std::vector<float>(g.begin(), g.end())));
    opt.step({w});
    out.push_back(w.data().to_vector<float>());
  }
  return out;
}

void check_close(const std::vector<std::vector<float>>& got, const std::vector<std::vector<double>>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t s = 0; s < got.size(); ++s)
    for (std::size_t i = 0; i < got[s].size(); ++i) {
      INFO("step " << s + 1 << " element " << i);
      CHECK(got[s][i] == doctest::Approx(want[s][i]).epsilon(2e-6));
    }
}

using Step = std::function<void(std::vector<double>& w, std::vector<double> g, int t)>;
std::vector<std::vector<double>> reference(const Step& step) {
  std::vector<double> w = kStart;
  std::vector<std::vector<double>> out;
  for (int t = 0; t < 3; ++t) {
    step(w, kGrads[t], t + 1);
    out.push_back(w);
  }
  return out;
}

}  // namespace

TEST_CASE("SGD without momentum: w -= lr * g") {
  SGD opt(0.1);
  check_close(run(opt), reference([](auto& w, auto g, int) {
                for (int i = 0; i < 3; ++i) w[i] -= 0.1 * g[i];
              }));
  CHECK(opt.iterations() == 3);
}

TEST_CASE("SGD with momentum and with Nesterov momentum") {
  for (bool nesterov : {false, true}) {
    SGD opt(0.1, 0.9, nesterov);
    std::vector<double> m(3, 0.0);
    check_close(run(opt), reference([&](auto& w, auto g, int) {
                  for (int i = 0; i < 3; ++i) {
                    m[i] = 0.9 * m[i] - 0.1 * g[i];
                    w[i] += nesterov ? 0.9 * m[i] - 0.1 * g[i] : m[i];
                  }
                }));
  }
}

TEST_CASE("Adam in Keras's form (lr_t with both bias corrections, epsilon outside the sqrt)") {
  Adam opt;  // lr 1e-3, 0.9, 0.999, 1e-7
  std::vector<double> m(3, 0.0), v(3, 0.0);
  check_close(run(opt), reference([&](auto& w, auto g, int t) {
                const double lr_t = 1e-3 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
                for (int i = 0; i < 3; ++i) {
                  m[i] += (g[i] - m[i]) * 0.1;
                  v[i] += (g[i] * g[i] - v[i]) * 0.001;
                  w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + 1e-7);
                }
              }));
}

TEST_CASE("RMSprop in Keras 3's form: defaults, momentum, centered") {
  RMSprop opt;  // lr 1e-3, rho 0.9, momentum 0, epsilon 1e-7, not centered
  std::vector<double> vel(3, 0.0);
  check_close(run(opt), reference([&](auto& w, auto g, int) {
                for (int i = 0; i < 3; ++i) {
                  vel[i] = 0.9 * vel[i] + 0.1 * g[i] * g[i];
                  w[i] -= 1e-3 * g[i] / std::sqrt(vel[i] + 1e-7);
                }
              }));
  for (bool centered : {false, true}) {
    INFO("centered " << centered);
    RMSprop opt2(0.01, {.rho = 0.8, .momentum = 0.5, .epsilon = 1e-3, .centered = centered});
    std::vector<double> v(3, 0.0), m(3, 0.0), avg(3, 0.0);
    check_close(run(opt2), reference([&](auto& w, auto g, int) {
                  for (int i = 0; i < 3; ++i) {
                    v[i] = 0.8 * v[i] + 0.2 * g[i] * g[i];
                    double denominator = v[i] + 1e-3;
                    if (centered) {
                      avg[i] = 0.8 * avg[i] + 0.2 * g[i];
                      denominator = v[i] - avg[i] * avg[i] + 1e-3;
                    }
                    m[i] = 0.5 * m[i] + 0.01 * g[i] / std::sqrt(denominator);
                    w[i] -= m[i];
                  }
                }));
    std::vector<std::string> keys;
    for (const auto& [k, t] : opt2.state()) keys.push_back(k);
    std::vector<std::string> want = {"layer/kernel/momentum", "layer/kernel/velocity"};
    if (centered) want.insert(want.begin(), "layer/kernel/average_gradient");
    CHECK(keys == want);
  }
  CHECK_THROWS_AS(RMSprop(0.01, {.rho = 1.5}), ValueError);
  CHECK_THROWS_AS(RMSprop(0.01, {.epsilon = 0.0}), ValueError);
}

TEST_CASE("AdamW is Adam with Keras's decoupled weight decay 0.004 by default") {
  AdamW opt;  // lr 1e-3, weight_decay 0.004, 0.9, 0.999, 1e-7
  CHECK(opt.name() == "AdamW");
  CHECK(opt.options().weight_decay == 0.004);
  std::vector<double> m(3, 0.0), v(3, 0.0);
  check_close(run(opt), reference([&](auto& w, auto g, int t) {
                const double lr_t = 1e-3 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
                for (int i = 0; i < 3; ++i) {
                  w[i] -= w[i] * 0.004 * 1e-3;
                  m[i] += (g[i] - m[i]) * 0.1;
                  v[i] += (g[i] * g[i] - v[i]) * 0.001;
                  w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + 1e-7);
                }
              }));
  AdamW strong(0.01, 0.5, {.beta_1 = 0.8}, {.clipvalue = 10.0});
  CHECK(strong.options().weight_decay == 0.5);
  CHECK(strong.options().clipvalue == 10.0);
  CHECK(AdamW(0.01, 0.5, {}, {.weight_decay = 0.5}).options().weight_decay == 0.5);
  CHECK_THROWS_AS(AdamW(0.01, 0.5, {}, {.weight_decay = 0.1}), ValueError);
}

TEST_CASE("Adagrad in Keras 3's form: the accumulator starts at 0.1") {
  Adagrad opt;  // lr 1e-3, initial_accumulator_value 0.1, epsilon 1e-7
  std::vector<double> acc(3, 0.1);
  check_close(run(opt), reference([&](auto& w, auto g, int) {
                for (int i = 0; i < 3; ++i) {
                  acc[i] += g[i] * g[i];
                  w[i] -= 1e-3 * g[i] / std::sqrt(acc[i] + 1e-7);
                }
              }));
  REQUIRE(opt.state().size() == 1);
  CHECK(opt.state()[0].first == "layer/kernel/accumulator");
  Adagrad opt2(0.5, {.initial_accumulator_value = 0.0, .epsilon = 1e-3}, {.weight_decay = 0.1});
  std::vector<double> acc2(3, 0.0);
  check_close(run(opt2), reference([&](auto& w, auto g, int) {
                for (int i = 0; i < 3; ++i) {
                  w[i] -= w[i] * 0.1 * 0.5;
                  acc2[i] += g[i] * g[i];
                  w[i] -= 0.5 * g[i] / std::sqrt(acc2[i] + 1e-3);
                }
              }));
  CHECK_THROWS_AS(Adagrad(0.01, {.initial_accumulator_value = -1.0}), ValueError);
}

TEST_CASE("make_optimizer knows Keras's names and defaults") {
  struct Want {
    const char* key;
    const char* name;
    double lr;
    double weight_decay;
  };
  for (const Want& w : {Want{"sgd", "SGD", 0.01, 0.0}, Want{"adam", "Adam", 1e-3, 0.0},
                        Want{"adamw", "AdamW", 1e-3, 0.004}, Want{"rmsprop", "RMSprop", 1e-3, 0.0},
                        Want{"adagrad", "Adagrad", 1e-3, 0.0}}) {
    INFO(w.key);
    const auto opt = make_optimizer(w.key);
    CHECK(opt->name() == w.name);
    CHECK(opt->learning_rate() == w.lr);
    CHECK(opt->options().weight_decay == w.weight_decay);
  }
  const std::string message = test::thrown_message<ValueError>([] { make_optimizer("adadelta"); });
  CHECK(message.find("rmsprop") != std::string::npos);
}

TEST_CASE("decoupled weight decay shrinks weights by lr * wd before the update") {
  Adam opt(0.01, {}, {.weight_decay = 0.1});
  std::vector<double> m(3, 0.0), v(3, 0.0);
  check_close(run(opt), reference([&](auto& w, auto g, int t) {
                const double lr_t = 0.01 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
                for (int i = 0; i < 3; ++i) {
                  w[i] -= 0.01 * 0.1 * w[i];
                  m[i] += (g[i] - m[i]) * 0.1;
                  v[i] += (g[i] * g[i] - v[i]) * 0.001;
                  w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + 1e-7);
                }
              }));
  SGD sgd(0.1, 0.0, false, {.weight_decay = 0.5});
  check_close(run(sgd), reference([&](auto& w, auto g, int) {
                for (int i = 0; i < 3; ++i) w[i] = w[i] - 0.1 * 0.5 * w[i] - 0.1 * g[i];
              }));
}

TEST_CASE("gradient clipping by norm, global norm and value") {
  SUBCASE("clipnorm scales each gradient to norm <= 1") {
    SGD opt(0.1, 0.0, false, {.clipnorm = 1.0});
    check_close(run(opt), reference([](auto& w, auto g, int) {
                  double n = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
                  double s = n > 1.0 ? 1.0 / n : 1.0;
                  for (int i = 0; i < 3; ++i) w[i] -= 0.1 * g[i] * s;
                }));
  }
  SUBCASE("clipvalue clamps each element") {
    SGD opt(0.1, 0.0, false, {.clipvalue = 0.5});
    check_close(run(opt), reference([](auto& w, auto g, int) {
                  for (int i = 0; i < 3; ++i) w[i] -= 0.1 * std::clamp(g[i], -0.5, 0.5);
                }));
  }
  SUBCASE("global_clipnorm scales all gradients together") {
    ag::Variable a(from_vector(std::vector<float>{0.0f, 0.0f}), true);
    ag::Variable b(from_vector(std::vector<float>{0.0f}), true);
    a.set_name("a/kernel");
    b.set_name("b/kernel");
    a.set_grad(from_vector(std::vector<float>{3.0f, 0.0f}));
    b.set_grad(from_vector(std::vector<float>{4.0f}));  // global norm 5
    SGD opt(1.0, 0.0, false, {.global_clipnorm = 1.0});
    opt.step({a, b});
    CHECK(a.data().to_vector<float>()[0] == doctest::Approx(-0.6));
    CHECK(b.data().to_vector<float>()[0] == doctest::Approx(-0.8));
  }
  OptimizerOptions two_clips{.clipnorm = 1.0};
  two_clips.clipvalue = 1.0;
  CHECK_THROWS_AS(SGD(0.1, 0.0, false, two_clips), ValueError);
}

TEST_CASE("parameters without gradients are left alone; unnamed parameters are refused") {
  ag::Variable w = make_param();
  SGD opt(0.1);
  opt.step({w});
  CHECK(w.data().to_vector<float>() == std::vector<float>{1.0f, -2.0f, 0.5f});
  ag::Variable unnamed(from_vector(std::vector<float>{1.0f}), true);
  unnamed.set_grad(from_vector(std::vector<float>{1.0f}));
  CHECK_THROWS_AS(opt.step({unnamed}), ValueError);
}

TEST_CASE("learning-rate schedules") {
  ExponentialDecay exp_decay(0.1, 10, 0.5);
  CHECK(exp_decay(0) == doctest::Approx(0.1));
  CHECK(exp_decay(5) == doctest::Approx(0.1 * std::pow(0.5, 0.5)));
  ExponentialDecay stair(0.1, 10, 0.5, true);
  CHECK(stair(19) == doctest::Approx(0.05));
  StepDecay step(1.0, 3, 0.1);
  CHECK(step(2) == doctest::Approx(1.0));
  CHECK(step(3) == doctest::Approx(0.1));
  CHECK(step(7) == doctest::Approx(0.01));
  CosineDecay cosine(1.0, 100, 0.1);
  CHECK(cosine(0) == doctest::Approx(1.0));
  CHECK(cosine(50) == doctest::Approx(0.55));
  CHECK(cosine(100) == doctest::Approx(0.1));
  CHECK(cosine(500) == doctest::Approx(0.1));

  // The optimizer evaluates its schedule at the step count before each update.
  SGD opt(1.0);
  opt.set_schedule(std::make_shared<StepDecay>(1.0, 1, 0.5));
  ag::Variable w = make_param();
  std::vector<double> lrs;
  for (int i = 0; i < 3; ++i) {
    lrs.push_back(opt.learning_rate());
    w.set_grad(from_vector(std::vector<float>{1.0f, 1.0f, 1.0f}));
    opt.step({w});
  }
  CHECK(lrs == std::vector<double>{1.0, 0.5, 0.25});
  CHECK(w.data().to_vector<float>()[0] == doctest::Approx(1.0 - 1.75));
}

TEST_CASE("PiecewiseConstantDecay and PolynomialDecay follow Keras's formulas") {
  PiecewiseConstantDecay piecewise({100, 110}, {1.0, 0.5, 0.1});
  for (std::int64_t step : {0, 99, 100, 101, 109, 110, 111, 100000}) {
    INFO("step " << step);
    const double want = step <= 100 ? 1.0 : step <= 110 ? 0.5 : 0.1;
    CHECK(piecewise(step) == want);
  }
  CHECK(PiecewiseConstantDecay({}, {0.3})(5) == 0.3);
  CHECK_THROWS_AS(PiecewiseConstantDecay({10, 20}, {1.0, 0.5}), ValueError);
  CHECK_THROWS_AS(PiecewiseConstantDecay({20, 10}, {1.0, 0.5, 0.1}), ValueError);

  // Keras: p = min(step, d) / d (cycle: d * ceil(step / d), 1 at step 0),
  // (initial - end) * (1 - p)^power + end.
  const auto keras = [](double initial, double d, double end, double power, bool cycle, double step) {
    if (cycle) {
      d *= step == 0 ? 1.0 : std::ceil(step / d);
    } else {
      step = std::min(step, d);
    }
    return (initial - end) * std::pow(1 - step / d, power) + end;
  };
  PolynomialDecay linear(0.1, 7);  // end 1e-4, power 1
  PolynomialDecay square(0.1, 7, 0.01, 2.0);
  PolynomialDecay cyclic(0.1, 7, 0.01, 0.5, true);
  for (std::int64_t step = 0; step <= 23; ++step) {
    INFO("step " << step);
    CHECK(linear(step) == doctest::Approx(keras(0.1, 7, 1e-4, 1.0, false, step)).epsilon(1e-12));
    CHECK(square(step) == doctest::Approx(keras(0.1, 7, 0.01, 2.0, false, step)).epsilon(1e-12));
    CHECK(cyclic(step) == doctest::Approx(keras(0.1, 7, 0.01, 0.5, true, step)).epsilon(1e-12));
  }
  CHECK(linear(7) == doctest::Approx(1e-4));
  CHECK(linear(0) == doctest::Approx(0.1));
  CHECK(cyclic(7) == doctest::Approx(0.01));
  CHECK(cyclic(8) > cyclic(7));  // restarted
  CHECK_THROWS_AS(PolynomialDecay(0.1, 0), ValueError);
}

TEST_CASE("WarmUp rises linearly, then follows the wrapped schedule as Keras 3's CosineDecay warm-up does") {
  // Keras 3 CosineDecay(initial_learning_rate=i, decay_steps=d, alpha=a,
  // warmup_target=t, warmup_steps=w).
  const auto keras_cosine = [](double i, double d, double a, double t, double w, double step) {
    if (step < w) return (t - i) * (step / w) + i;
    const double s = std::min(step - w, d);
    return t * ((1 - a) * 0.5 * (1 + std::cos(std::numbers::pi * s / d)) + a);
  };
  WarmUp from_zero(std::make_shared<CosineDecay>(0.1, 20, 0.05), 5);
  WarmUp from_some(std::make_shared<CosineDecay>(0.1, 20, 0.0), 3, 0.02);
  for (std::int64_t step = 0; step <= 40; ++step) {
    INFO("step " << step);
    CHECK(from_zero(step) == doctest::Approx(keras_cosine(0.0, 20, 0.05, 0.1, 5, step)).epsilon(1e-12));
    CHECK(from_some(step) == doctest::Approx(keras_cosine(0.02, 20, 0.0, 0.1, 3, step)).epsilon(1e-12));
  }
  CHECK(from_zero(0) == 0.0);
  CHECK(from_zero(5) == doctest::Approx(0.1));

  // offset = false: up to after(warmup_steps), then after(step).
  auto step_decay = std::make_shared<StepDecay>(1.0, 4, 0.5);
  WarmUp global(step_decay, 4, 0.0, false);
  CHECK(global(0) == 0.0);
  CHECK(global(2) == doctest::Approx(0.25));  // half-way to step_decay(4) = 0.5
  for (std::int64_t step = 4; step < 20; ++step) CHECK(global(step) == (*step_decay)(step));

  WarmUp constant(0.3, 10);
  CHECK(constant(0) == 0.0);
  CHECK(constant(4) == doctest::Approx(0.12));
  CHECK(constant(10) == 0.3);
  CHECK(constant(1000) == 0.3);
  CHECK(WarmUp(0.3, 0)(0) == 0.3);  // no warm-up
  CHECK_THROWS_AS(WarmUp(0.3, -1), ValueError);
  CHECK_THROWS_AS(WarmUp(std::shared_ptr<const LearningRateSchedule>(), 3), ValueError);

  // An optimizer with a warm-up schedule steps at the warm-up rates.
  SGD opt(1.0);
  opt.set_schedule(std::make_shared<WarmUp>(0.4, 4));
  ag::Variable w = make_param();
  for (int i = 0; i < 3; ++i) {
    w.set_grad(from_vector(std::vector<float>{1.0f, 1.0f, 1.0f}));
    opt.step({w});
  }
  CHECK(w.data().to_vector<float>()[0] == doctest::Approx(1.0 - (0.0 + 0.1 + 0.2)));
}

TEST_CASE("optimizer state round trip keeps the next update identical") {
  Adam a;
  ag::Variable w1 = make_param();
  for (int s = 0; s < 2; ++s) {
    w1.set_grad(from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}));
    a.step({w1});
  }
  Adam b;
  b.load_state(a.state(), a.iterations());
  ag::Variable w2(w1.data().clone(), true);
  w2.set_name("layer/kernel");
  for (auto* w : {&w1, &w2}) w->set_grad(from_vector(std::vector<float>{1.0f, 0.1f, -3.0f}));
  a.step({w1});
  b.step({w2});
  CHECK(w1.data().to_vector<float>() == w2.data().to_vector<float>());

  // RMSprop (every slot) and Adagrad (a non-zero initial slot) too.
  using Make = std::function<std::unique_ptr<Optimizer>()>;
  for (const Make& make : {Make([] { return std::make_unique<RMSprop>(0.01, RMSpropOptions{.momentum = 0.9,
                                                                                              .centered = true}); }),
                           Make([] { return std::make_unique<Adagrad>(0.1); })}) {
    auto first = make();
    ag::Variable u1 = make_param();
    for (int s = 0; s < 2; ++s) {
      u1.set_grad(from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}));
      first->step({u1});
    }
    auto second = make();
    second->load_state(first->state(), first->iterations());
    ag::Variable u2(u1.data().clone(), true);
    u2.set_name("layer/kernel");
    for (auto* u : {&u1, &u2}) u->set_grad(from_vector(std::vector<float>{1.0f, 0.1f, -3.0f}));
    first->step({u1});
    second->step({u2});
    INFO(first->name());
    CHECK(u1.data().to_vector<float>() == u2.data().to_vector<float>());
  }
}

namespace {

// Two parameter sets with the same names and values: one for an optimizer
// constructed with its parameters (step()), one for the per-step form.
std::vector<ag::Variable> make_params(std::uint64_t seed) {
  Generator gen(seed);
  std::vector<ag::Variable> params;
  const std::vector<Shape> shapes = {{3, 4}, {4}, {1}, {5, 2}};
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    ag::Variable p(normal(shapes[i], 0.0, 1.0, gen), true);
    p.set_name("layer_" + std::to_string(i) + "/kernel");
    params.push_back(p);
  }
  return params;
}

// Gives both sets the same random gradients (parameter 2 none on even steps).
void set_same_grads(std::vector<ag::Variable>& a, std::vector<ag::Variable>& b, Generator& gen, int step) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i].zero_grad();
    b[i].zero_grad();
    if (i == 2 && step % 2 == 0) continue;
    const Tensor g = normal(a[i].shape(), 0.0, 2.0, gen);
    a[i].set_grad(g.clone());
    b[i].set_grad(g.clone());
  }
}

}  // namespace

TEST_CASE("an optimizer constructed with its parameters steps them bit for bit as the per-step form") {
  using Make = std::function<std::unique_ptr<Optimizer>(std::vector<ag::Variable>*)>;
  const std::vector<std::pair<const char*, Make>> optimizers = {
      {"SGD momentum",
       [](std::vector<ag::Variable>* p) {
         return p ? std::make_unique<SGD>(*p, 0.05, 0.9) : std::make_unique<SGD>(0.05, 0.9);
       }},
      {"SGD Nesterov, weight decay, global_clipnorm",
       [](std::vector<ag::Variable>* p) {
         const OptimizerOptions o{.weight_decay = 0.01, .global_clipnorm = 1.0};
         return p ? std::make_unique<SGD>(*p, 0.05, 0.9, true, o) : std::make_unique<SGD>(0.05, 0.9, true, o);
       }},
      {"Adam",
       [](std::vector<ag::Variable>* p) {
         return p ? std::make_unique<Adam>(*p, 0.01) : std::make_unique<Adam>(0.01);
       }},
      {"Adam, betas, clipnorm",
       [](std::vector<ag::Variable>* p) {
         const AdamOptions a{.beta_1 = 0.8, .beta_2 = 0.99, .epsilon = 1e-6};
         const OptimizerOptions o{.clipnorm = 0.5};
         return p ? std::make_unique<Adam>(*p, 0.01, a, o) : std::make_unique<Adam>(0.01, a, o);
       }},
      {"AdamW",
       [](std::vector<ag::Variable>* p) {
         return p ? std::make_unique<AdamW>(*p, 0.01, 0.05) : std::make_unique<AdamW>(0.01, 0.05);
       }},
      {"RMSprop centered, momentum",
       [](std::vector<ag::Variable>* p) {
         const RMSpropOptions r{.momentum = 0.9, .centered = true};
         return p ? std::make_unique<RMSprop>(*p, 0.01, r) : std::make_unique<RMSprop>(0.01, r);
       }},
      {"Adagrad, clipvalue",
       [](std::vector<ag::Variable>* p) {
         const OptimizerOptions o{.clipvalue = 1.0};
         return p ? std::make_unique<Adagrad>(*p, 0.1, AdagradOptions{}, o)
                  : std::make_unique<Adagrad>(0.1, AdagradOptions{}, o);
       }},
  };
  for (const auto& [label, make] : optimizers) {
    INFO(label);
    std::vector<ag::Variable> held = make_params(3);
    std::vector<ag::Variable> given = make_params(3);
    std::unique_ptr<Optimizer> with_params = make(&held);
    std::unique_ptr<Optimizer> per_step = make(nullptr);
    REQUIRE(with_params->parameters().size() == held.size());
    Generator gen(11);
    for (int step = 0; step < 4; ++step) {
      set_same_grads(held, given, gen, step);
      with_params->step();
      per_step->step(given);
    }
    CHECK(with_params->iterations() == 4);
    for (std::size_t i = 0; i < held.size(); ++i) {
      CHECK(held[i].data().to_vector<float>() == given[i].data().to_vector<float>());
      CHECK(held[i].data().to_vector<float>() != make_params(3)[i].data().to_vector<float>());  // it moved
    }
    const auto sa = with_params->state(), sb = per_step->state();
    REQUIRE(sa.size() == sb.size());
    for (std::size_t k = 0; k < sa.size(); ++k) {
      CHECK(sa[k].first == sb[k].first);
      CHECK(sa[k].second.to_vector<float>() == sb[k].second.to_vector<float>());
    }
    // zero_grad drops the gradients of the held parameters only.
    with_params->zero_grad();
    for (std::size_t i = 0; i < held.size(); ++i) {
      CHECK_FALSE(held[i].has_grad());
      if (i != 2) CHECK(given[i].has_grad());
    }
  }
}

TEST_CASE("step() and zero_grad() need parameters; set_parameters checks them") {
  SGD sgd(0.1);
  Adam adam;
  for (Optimizer* opt : std::vector<Optimizer*>{&sgd, &adam}) {
    const std::string message = test::thrown_message<ValueError>([&] { opt->step(); });
    CHECK(message.find("parameters") != std::string::npos);
    CHECK_THROWS_AS(opt->zero_grad(), ValueError);
    CHECK(opt->iterations() == 0);
  }
  CHECK_THROWS_AS(SGD(std::vector<ag::Variable>{}, 0.1).step(), ValueError);

  ag::Variable unnamed(zeros({2}), true);
  CHECK_THROWS_AS(Adam(std::vector<ag::Variable>{unnamed}), ValueError);
  CHECK_THROWS_AS(Adam(std::vector<ag::Variable>{ag::Variable()}), ValueError);
  ag::Variable a = make_param(), b = make_param();  // both "layer/kernel"
  const std::string message = test::thrown_message<ValueError>([&] { sgd.set_parameters({a, b}); });
  CHECK(message.find("layer/kernel") != std::string::npos);

  // set_parameters replaces the list; the per-step form still works beside it.
  sgd.set_parameters({a});
  a.set_grad(from_vector(std::vector<float>{1.0f, 1.0f, 1.0f}));
  b.set_grad(from_vector(std::vector<float>{1.0f, 1.0f, 1.0f}));
  const auto check_stepped = [](const ag::Variable& w) {
    const std::vector<float> got = w.data().to_vector<float>();
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(kStart[i] - 0.1));
  };
  sgd.step();
  check_stepped(a);
  CHECK(b.data().to_vector<float>() == std::vector<float>{1.0f, -2.0f, 0.5f});
  sgd.step({b});
  check_stepped(b);
  CHECK(sgd.iterations() == 2);
}
