// Elementwise ops (binary with broadcasting, scalar, unary, fused backward
// helpers) against double-precision reference loops, under every ISA and 1
// and 2 threads, on contiguous, broadcast and strided inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;
using petal::test::check_close;
using petal::test::for_each_isa_and_threads;
using petal::test::random_tensor;
using petal::test::reference_binary;

namespace {

struct BinaryCase {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  std::function<double(double, double)> reference;
};

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
      {"add", &ops::add, [](double a, double b) { return a + b; }},
      {"sub", &ops::sub, [](double a, double b) { return a - b; }},
      {"mul", &ops::mul, [](double a, double b) { return a * b; }},
      {"div", &ops::div, [](double a, double b) { return a / b; }},
      {"maximum", &ops::maximum, [](double a, double b) { return std::max(a, b); }},
      {"minimum", &ops::minimum, [](double a, double b) { return std::min(a, b); }},
  };
  return cases;
}

// Shape pairs covering every broadcast kind, lengths around the SIMD widths
// (8 and 16 floats) and primes; the last ones are big enough to be split
// over two threads.
const std::vector<std::pair<Shape, Shape>>& broadcast_pairs() {
  static const std::vector<std::pair<Shape, Shape>> pairs = {
      {{1}, {1}},           {{7}, {7}},          {{8}, {8}},         {{16}, {16}},        {{17}, {17}},
      {{33}, {33}},         {{3, 37}, {3, 37}},  {{5, 19}, {19}},    {{4, 16}, {16}},     {{6, 1}, {1, 13}},
      {{9, 11}, {}},        {{}, {9, 11}},       {{9, 11}, {1}},     {{1, 1, 7}, {3, 1, 7}}, {{2, 1, 5}, {4, 1}},
      {{7, 1}, {7, 23}},    {{23}, {5, 1, 23}},  {{600, 129}, {129}}, {{70001}, {70001}}, {{557, 131}, {557, 1}},
  };
  return pairs;
}

// Divisors kept away from zero so the relative tolerance stays meaningful.
Tensor divisor_like(const Shape& shape, Generator& gen, DType dtype) {
  return ops::add_scalar(ops::abs(random_tensor(shape, gen, dtype)), 0.5);
}

}  // namespace

TEST_CASE("binary ops broadcast like NumPy under every ISA and thread count") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const double rtol = dtype == DType::Float32 ? 2e-6 : 1e-13;
    Generator gen(11);
    for (const auto& [sa, sb] : broadcast_pairs()) {
      const Tensor a = random_tensor(sa, gen, dtype);
      const Tensor b_any = random_tensor(sb, gen, dtype);
      const Tensor b_div = divisor_like(sb, gen, dtype);
      const Shape out_shape = broadcast_shapes(sa, sb, "test");
      for (const BinaryCase& c : binary_cases()) {
        const Tensor& b = std::string(c.name) == "div" ? b_div : b_any;
        const std::vector<double> expected = reference_binary(a, b, out_shape, c.reference);
        INFO(std::string(c.name), " ", shape_str(sa), " with ", shape_str(sb), " ", std::string(dtype_name(dtype)));
        for_each_isa_and_threads([&] {
          const Tensor out = c.op(a, b);
          CHECK(out.shape() == out_shape);
          CHECK(out.dtype() == dtype);
          check_close(out, expected, rtol, 1e-30);
        });
      }
    }
  }
}

TEST_CASE("binary ops read transposed, sliced and expanded views") {
  Generator gen(12);
  const Tensor base = random_tensor({13, 21}, gen);
  const std::vector<std::pair<Tensor, Tensor>> pairs = {
      {base.transpose(0, 1), random_tensor({21, 13}, gen)},                 // column-major lhs
      {random_tensor({21, 13}, gen), base.transpose(0, 1)},                 // column-major rhs
      {base.slice(1, 1, 21, 2), random_tensor({13, 10}, gen)},              // every other column
      {base.slice(0, 2, 11).slice(1, 0, 18), base.slice(0, 0, 9).slice(1, 3, 21)},          // offsets, different strides
      {random_tensor({4, 1, 17}, gen).expand({4, 5, 17}), random_tensor({5, 17}, gen)},
      {base.transpose(0, 1), random_tensor({13}, gen)},                     // strided + row broadcast
      {base.select(1, 3), random_tensor({13}, gen)},                        // stride 21 run
  };
  for (const auto& [a, b] : pairs) {
    const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), "test");
    for (const BinaryCase& c : binary_cases()) {
      if (std::string(c.name) == "div") continue;  // covered with safe divisors above
      const std::vector<double> expected = reference_binary(a, b, out_shape, c.reference);
      INFO(std::string(c.name), " ", shape_str(a.shape()), " with ", shape_str(b.shape()));
      for_each_isa_and_threads([&] { check_close(c.op(a, b), expected, 2e-6, 1e-30); });
    }
  }
}

TEST_CASE("strided inputs are copied in tiles exactly") {
  Generator gen(17);
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    const Tensor base = dtype == DType::Int64 ? arange(70 * 90).view({70, 90})
                                              : random_tensor({70, 90}, gen, dtype);
    const Tensor cube = dtype == DType::Int64 ? arange(5 * 33 * 40).view({5, 33, 40})
                                              : random_tensor({5, 33, 40}, gen, dtype);
    const std::vector<Tensor> views = {base.transpose(0, 1),       base.slice(1, 1, 90, 3),
                                       cube.permute({2, 0, 1}),    cube.permute({0, 2, 1}),
                                       cube.permute({1, 2, 0}).slice(0, 2, 30),
                                       base.select(1, 4),          base.slice(0, 3, 4).expand({6, 90})};
    for (const Tensor& view : views) {
      INFO(shape_str(view.shape()), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        const Tensor copy = ops::detail::contiguous_tiled(view);
        CHECK(copy.is_contiguous());
        CHECK(copy.shape() == view.shape());
        CHECK(copy.to_vector<double>() == view.to_vector<double>());
      });
    }
  }
  // Large transposed operands take the tiled path inside the ops.
  const Tensor a = random_tensor({90, 70}, gen), b = random_tensor({70, 90}, gen);
  const std::vector<double> expected =
      reference_binary(a.transpose(0, 1), b, {70, 90}, [](double x, double y) { return x * y; });
  for_each_isa_and_threads([&] { check_close(ops::mul(a.transpose(0, 1), b), expected, 2e-6, 0); });
}

TEST_CASE("add_ accumulates in place with alpha, broadcasting and strided targets") {
  Generator gen(13);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const std::vector<std::pair<Shape, Shape>> pairs = {
        {{17}, {17}}, {{5, 19}, {19}}, {{6, 13}, {6, 1}}, {{3, 7}, {}}, {{600, 129}, {129}}, {{70001}, {70001}}};
    for (const auto& [sa, sb] : pairs) {
      const Tensor a0 = random_tensor(sa, gen, dtype), b = random_tensor(sb, gen, dtype);
      const std::vector<double> expected =
          reference_binary(a0, b, sa, [](double x, double y) { return x - 0.75 * y; });
      INFO(shape_str(sa), " += ", shape_str(sb), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        Tensor a = a0.clone();
        ops::add_(a, b, -0.75);
        check_close(a, expected, 2e-6, 1e-6);
      });
    }
  }
  // A transposed target is updated through its strides.
  Tensor storage = random_tensor({9, 14}, gen);
  const Tensor before = storage.clone();
  Tensor target = storage.transpose(0, 1);
  const Tensor b = random_tensor({14, 9}, gen);
  const std::vector<double> expected =
      reference_binary(before.transpose(0, 1), b, {14, 9}, [](double x, double y) { return x + y; });
  ops::add_(target, b);
  check_close(target, expected, 2e-6, 1e-6);
}

TEST_CASE("scalar ops") {
  Generator gen(14);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1}, Shape{15}, Shape{16}, Shape{17}, Shape{1031}, Shape{40000}, Shape{3, 5, 7}}) {
      const Tensor a = random_tensor(shape, gen, dtype);
      const Tensor positive = ops::add_scalar(ops::abs(a), 0.25);
      const std::vector<double> va = a.to_vector<double>(), vp = positive.to_vector<double>();
      auto map = [](const std::vector<double>& v, const std::function<double(double)>& f) {
        std::vector<double> out(v.size());
        std::transform(v.begin(), v.end(), out.begin(), f);
        return out;
      };
      INFO(shape_str(shape), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        check_close(ops::add_scalar(a, 1.5), map(va, [](double x) { return x + 1.5; }), 2e-6, 1e-6);
        check_close(ops::mul_scalar(a, -3.25), map(va, [](double x) { return x * -3.25; }), 2e-6, 1e-6);
        for (double e : {2.0, 0.5, -1.0, 3.0, 1.5})
          check_close(ops::pow_scalar(positive, e), map(vp, [e](double x) { return std::pow(x, e); }), 1e-5, 1e-6);
        check_close(ops::pow_scalar(a, 2.0), map(va, [](double x) { return x * x; }), 2e-6, 1e-6);
        Tensor c = a.clone();
        ops::mul_scalar_(c, 0.5);
        check_close(c, map(va, [](double x) { return x * 0.5; }), 2e-6, 0);
      });
    }
  }
  // In place through a strided view leaves the other elements alone.
  Tensor storage = ops::add_scalar(zeros({4, 6}), 2.0);
  Tensor every_other = storage.slice(1, 0, 6, 2);
  ops::mul_scalar_(every_other, 3.0);
  CHECK(storage.to_vector<float>() == std::vector<float>{6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2,
                                                         6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2});
}

TEST_CASE("unary ops against std:: math, on contiguous and transposed inputs") {
  struct UnaryCase {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<double(double)> reference;
    bool positive_only;
  };
  const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor& t) { return ops::neg(t); }, [](double x) { return -x; }, false},
      {"exp", [](const Tensor& t) { return ops::exp(t); }, [](double x) { return std::exp(x); }, false},
      {"log", [](const Tensor& t) { return ops::log(t); }, [](double x) { return std::log(x); }, true},
      {"sqrt", [](const Tensor& t) { return ops::sqrt(t); }, [](double x) { return std::sqrt(x); }, true},
      {"abs", [](const Tensor& t) { return ops::abs(t); }, [](double x) { return std::abs(x); }, false},
      {"relu", [](const Tensor& t) { return ops::relu(t); }, [](double x) { return std::max(x, 0.0); }, false},
      {"relu6", [](const Tensor& t) { return ops::relu6(t); },
       [](double x) { return std::min(std::max(x, 0.0), 6.0); }, false},
      {"sigmoid", [](const Tensor& t) { return ops::sigmoid(t); },
       [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, false},
      {"tanh", [](const Tensor& t) { return ops::tanh(t); }, [](double x) { return std::tanh(x); }, false},
      {"clamp", [](const Tensor& t) { return ops::clamp(t, -1.5, 2.5); },
       [](double x) { return std::min(std::max(x, -1.5), 2.5); }, false},
  };
  Generator gen(15);
  std::vector<Tensor> inputs;
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{8}, Shape{15}, Shape{16}, Shape{17}, Shape{1031}, Shape{70001}})
    inputs.push_back(random_tensor(shape, gen, DType::Float32, -8.0, 8.0));
  inputs.push_back(random_tensor({19, 23}, gen, DType::Float32, -8.0, 8.0).transpose(0, 1));
  inputs.push_back(random_tensor({40}, gen, DType::Float64, -8.0, 8.0));
  inputs.push_back(random_tensor({6, 5}, gen, DType::Float64, -8.0, 8.0).transpose(0, 1));
  // Saturation: large magnitudes must give exact 0/1/-1, never NaN.
  inputs.push_back(from_vector<float>({-100.0f, -90.0f, -20.0f, 0.0f, 20.0f, 90.0f, 100.0f, 6.0f, -0.0f}));
  for (const UnaryCase& c : cases) {
    for (const Tensor& input : inputs) {
      const Tensor x = c.positive_only ? ops::add_scalar(ops::abs(input), 1e-3) : input;
      std::vector<double> expected = x.to_vector<double>();
      for (double& v : expected) v = c.reference(v);
      INFO(std::string(c.name), " on ", shape_str(x.shape()), " ", std::string(dtype_name(x.dtype())));
      const double rtol = x.dtype() == DType::Float32 ? 1e-5 : 1e-12;
      for_each_isa_and_threads([&] {
        const Tensor y = c.op(x);
        CHECK(y.shape() == x.shape());
        check_close(y, expected, rtol, 1e-7);
      });
    }
  }
}

TEST_CASE("fused backward helpers match grad times the local derivative") {
  Generator gen(16);
  struct BackwardCase {
    const char* name;
    Tensor (*op)(const Tensor&, const Tensor&);
    std::function<double(double, double)> reference;  // (grad, saved)
  };
  const std::vector<BackwardCase> cases = {
      {"relu_backward", &ops::relu_backward, [](double g, double x) { return x > 0 ? g : 0.0; }},
      {"relu6_backward", &ops::relu6_backward, [](double g, double x) { return x > 0 && x < 6 ? g : 0.0; }},
      {"sigmoid_backward", &ops::sigmoid_backward, [](double g, double y) { return g * y * (1 - y); }},
      {"tanh_backward", &ops::tanh_backward, [](double g, double y) { return g * (1 - y * y); }},
  };
  std::vector<std::pair<Tensor, Tensor>> inputs;
  for (const Shape& shape : {Shape{1}, Shape{17}, Shape{16}, Shape{3, 33}, Shape{70000}})
    inputs.emplace_back(random_tensor(shape, gen), random_tensor(shape, gen, DType::Float32, -2.0, 8.0));
  // Exactly at the kinks 0 and 6 the derivative is taken as 0.
  inputs.emplace_back(from_vector<float>({1, 2, 3, 4, 5, 6, 7}), from_vector<float>({0, 6, -0.0f, 5.999f, 6.001f, 1e-7f, -1e-7f}));
  inputs.emplace_back(random_tensor({11, 7}, gen).transpose(0, 1), random_tensor({7, 11}, gen, DType::Float32, -1.0, 7.0));
  inputs.emplace_back(random_tensor({12, 5}, gen, DType::Float64), random_tensor({12, 5}, gen, DType::Float64, -1.0, 7.0));
  // A broadcast (stride 0) gradient, as the gradient of a sum arrives.
  inputs.emplace_back(full({1}, 0.5).expand({40}), random_tensor({40}, gen, DType::Float32, -1.0, 7.0));
  for (const BackwardCase& c : cases) {
    for (const auto& [g, s] : inputs) {
      const std::vector<double> expected = reference_binary(g, s, g.shape(), c.reference);
      INFO(std::string(c.name), " on ", shape_str(g.shape()), " ", std::string(dtype_name(g.dtype())));
      for_each_isa_and_threads([&] { check_close(c.op(g, s), expected, 2e-6, 1e-7); });
    }
  }
}

TEST_CASE("empty tensors give empty results") {
  const Tensor a = zeros({0, 5}), b = zeros({5});
  CHECK(ops::add(a, b).shape() == Shape{0, 5});
  CHECK(ops::exp(a).numel() == 0);
  CHECK(ops::relu_backward(a, a).shape() == Shape{0, 5});
}
