// nn::clip_grad_norm against a plain double-precision reference over random
// gradients: 2-norm and inf-norm, clipping and not, parameters without
// gradients, non-finite gradients, bad arguments.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "nn/grad_clipping.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Parameters of the given sizes; those at the indices in `no_grad` get none.
std::vector<ag::Variable> make_params(const std::vector<std::int64_t>& sizes, const std::vector<std::size_t>& no_grad,
                                      Generator& gen, double stddev, DType dtype = DType::Float32) {
  std::vector<ag::Variable> params;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ag::Variable p(zeros({sizes[i]}, dtype), true);
    if (std::find(no_grad.begin(), no_grad.end(), i) == no_grad.end())
      p.set_grad(normal({sizes[i]}, 0.0, stddev, gen, dtype));
    params.push_back(p);
  }
  return params;
}

std::vector<std::vector<double>> grads_of(const std::vector<ag::Variable>& params) {
  std::vector<std::vector<double>> out;
  for (const ag::Variable& p : params) out.push_back(p.has_grad() ? p.grad().to_vector<double>() : std::vector<double>{});
  return out;
}

// The reference: the norm of all gradient elements concatenated.
double reference_norm(const std::vector<std::vector<double>>& grads, double norm_type) {
  double acc = 0.0;
  for (const auto& g : grads)
    for (double x : g) acc = norm_type == kInf ? std::max(acc, std::abs(x)) : acc + x * x;
  return norm_type == kInf ? acc : std::sqrt(acc);
}

}  // namespace

TEST_CASE("clip_grad_norm matches the reference norm and scales every gradient by max_norm / (total + 1e-6)") {
  Generator gen(13);
  const std::vector<std::vector<std::int64_t>> layouts = {{1}, {1, 1}, {7, 1, 300}, {4096, 33, 1, 100000}};
  for (double norm_type : {2.0, kInf}) {
    for (const auto& sizes : layouts) {
      // Parameter 1 (when there is one) has no gradient.
      const std::vector<std::size_t> no_grad = sizes.size() > 1 ? std::vector<std::size_t>{1} : std::vector<std::size_t>{};
      std::vector<ag::Variable> params = make_params(sizes, no_grad, gen, 30.0);
      const auto before = grads_of(params);
      const double want = reference_norm(before, norm_type);
      REQUIRE(want > 0.1);  // 1e-6 / total stays far below the 1e-5 tolerance
      const double max_norm = want / 3.0;
      INFO("norm " << norm_type << ", " << sizes.size() << " parameters, first of " << sizes[0]);

      const double got = nn::clip_grad_norm(params, max_norm, norm_type);
      CHECK(got == doctest::Approx(want).epsilon(1e-12));  // the norm before clipping

      const auto after = grads_of(params);
      const double scale = max_norm / (want + 1e-6);
      for (std::size_t i = 0; i < params.size(); ++i) {
        if (before[i].empty()) {
          CHECK_FALSE(params[i].has_grad());  // still none
          continue;
        }
        for (std::size_t k = 0; k < before[i].size(); ++k)
          REQUIRE(after[i][k] == doctest::Approx(before[i][k] * scale).epsilon(1e-6));
      }
      CHECK(reference_norm(after, norm_type) == doctest::Approx(max_norm).epsilon(1e-5));
    }
  }
}

TEST_CASE("clip_grad_norm leaves gradients under max_norm bit for bit unchanged") {
  Generator gen(5);
  for (double norm_type : {2.0, kInf}) {
    std::vector<ag::Variable> params = make_params({1, 50, 1000}, {}, gen, 0.1);
    const auto before = grads_of(params);
    const double want = reference_norm(before, norm_type);
    CHECK(nn::clip_grad_norm(params, want * 1.01, norm_type) == doctest::Approx(want).epsilon(1e-12));
    CHECK(grads_of(params) == before);
    CHECK(nn::clip_grad_norm(params, kInf, norm_type) == doctest::Approx(want).epsilon(1e-12));
    CHECK(grads_of(params) == before);
  }
}

TEST_CASE("clip_grad_norm: float64 gradients, no gradients at all, a parameter listed twice") {
  Generator gen(7);
  std::vector<ag::Variable> params = make_params({10, 20}, {}, gen, 1.0, DType::Float64);
  const auto before = grads_of(params);
  const double want = reference_norm(before, 2.0);
  CHECK(nn::clip_grad_norm(params, 0.5) == doctest::Approx(want).epsilon(1e-12));
  CHECK(reference_norm(grads_of(params), 2.0) == doctest::Approx(0.5).epsilon(1e-5));
  CHECK(params[0].grad().dtype() == DType::Float64);

  std::vector<ag::Variable> none = make_params({3, 4}, {0, 1}, gen, 1.0);
  CHECK(nn::clip_grad_norm(none, 1.0) == 0.0);
  CHECK(nn::clip_grad_norm(none, 1.0, kInf) == 0.0);
  CHECK(nn::clip_grad_norm({}, 1.0) == 0.0);

  ag::Variable p(zeros({2}), true);
  p.set_grad(from_vector(std::vector<float>{3.0f, 4.0f}));  // norm 5, counted once
  CHECK(nn::clip_grad_norm({p, p}, 1.0) == doctest::Approx(5.0));
  CHECK(reference_norm(grads_of({p}), 2.0) == doctest::Approx(1.0).epsilon(1e-5));  // scaled once
}

TEST_CASE("clip_grad_norm returns a non-finite norm and leaves the gradients unchanged") {
  for (double bad : {kNaN, kInf, -kInf}) {
    for (double norm_type : {2.0, kInf}) {
      ag::Variable a(zeros({3}), true);
      ag::Variable b(zeros({2}), true);
      a.set_grad(from_vector(std::vector<float>{1.0f, -2.0f, 100.0f}));
      b.set_grad(from_vector(std::vector<float>{0.5f, static_cast<float>(bad)}));
      const auto before_a = a.grad().to_vector<float>();
      const double got = nn::clip_grad_norm({a, b}, 1.0, norm_type);
      INFO("bad element " << bad << ", norm " << norm_type);
      if (std::isnan(bad))
        CHECK(std::isnan(got));
      else
        CHECK(got == kInf);
      CHECK(a.grad().to_vector<float>() == before_a);
      CHECK(b.grad().to_vector<float>()[0] == 0.5f);
    }
  }
}

TEST_CASE("clip_grad_norm refuses a bad max_norm or norm_type, naming the value") {
  ag::Variable p(zeros({2}), true);
  p.set_grad(from_vector(std::vector<float>{3.0f, 4.0f}));
  for (double max_norm : {0.0, -1.5, kNaN, -kInf}) {
    const std::string message = test::thrown_message<ValueError>([&] { nn::clip_grad_norm({p}, max_norm); });
    INFO(message);
    CHECK(message.find("max_norm") != std::string::npos);
    CHECK(message.find(str_cat(max_norm)) != std::string::npos);
  }
  for (double norm_type : {1.0, 0.0, 3.0, -kInf, kNaN}) {
    const std::string message = test::thrown_message<ValueError>([&] { nn::clip_grad_norm({p}, 1.0, norm_type); });
    INFO(message);
    CHECK(message.find("norm_type") != std::string::npos);
    CHECK(message.find(str_cat(norm_type)) != std::string::npos);
  }
  CHECK(p.grad().to_vector<float>() == std::vector<float>{3.0f, 4.0f});  // nothing changed
}
