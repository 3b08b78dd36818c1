// Elementwise ops beyond the op registry (tests/ops runs every binary,
// scalar, unary and fused-backward entry against its reference on every ISA):
// tiled copies of strided inputs, in-place ops, exact kinks, empty tensors.
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

TEST_CASE("mul_scalar_ scales in place, also through a strided view") {
  Generator gen(14);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1}, Shape{17}, Shape{1031}, Shape{40000}, Shape{3, 5, 7}}) {
      const Tensor a = random_tensor(shape, gen, dtype);
      std::vector<double> expected = a.to_vector<double>();
      for (double& x : expected) x *= 0.5;
      INFO(shape_str(shape), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        Tensor c = a.clone();
        ops::mul_scalar_(c, 0.5);
        check_close(c, expected, 2e-6, 0);
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

TEST_CASE("fused backward helpers: exactly at the kinks 0 and 6 the derivative is 0; broadcast gradients") {
  const Tensor g = from_vector<float>({1, 2, 3, 4, 5, 6, 7});
  const Tensor x = from_vector<float>({0, 6, -0.0f, 5.999f, 6.001f, 1e-7f, -1e-7f});
  for_each_isa_and_threads([&] {
    CHECK(ops::relu_backward(g, x).to_vector<float>() == std::vector<float>{0, 2, 0, 4, 5, 6, 0});
    CHECK(ops::relu6_backward(g, x).to_vector<float>() == std::vector<float>{0, 0, 0, 4, 0, 6, 0});
  });
  // A broadcast (stride 0) gradient, as the gradient of a sum arrives.
  Generator gen(16);
  const Tensor grad = full({1}, 0.5).expand({40});
  const Tensor saved = random_tensor({40}, gen, DType::Float32, -1.0, 7.0);
  const std::vector<double> expected = reference_binary(grad, saved, {40}, [](double a, double b) {
    return b > 0 && b < 6 ? a : 0.0;
  });
  for_each_isa_and_threads([&] { check_close(ops::relu6_backward(grad, saved), expected, 0, 0); });
}

TEST_CASE("empty tensors give empty results") {
  const Tensor a = zeros({0, 5}), b = zeros({5});
  CHECK(ops::add(a, b).shape() == Shape{0, 5});
  CHECK(ops::exp(a).numel() == 0);
  CHECK(ops::relu_backward(a, a).shape() == Shape{0, 5});
}
