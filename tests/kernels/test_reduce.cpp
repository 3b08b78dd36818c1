// Reductions beyond the op registry (tests/ops runs every sum, mean, max,
// argmax and sum_to entry against its reference on every ISA): exact integer
// sums, determinism per thread count, NaN, empty inputs, ties.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;
using petal::test::for_each_isa_and_threads;
using petal::test::random_tensor;

TEST_CASE("reductions are deterministic for a thread count and sum to the exact value on integers") {
  // Integers are summed exactly in float32 while below 2^24: any order gives
  // the same result, so this catches dropped or double-counted elements.
  Generator gen(23);
  const Tensor ints = ops::add_scalar(ops::mul_scalar(random_tensor({70001}, gen, DType::Float32, 0.0, 1.0), 0.0), 3.0);
  for_each_isa_and_threads([&] { CHECK(ops::sum(ints).item<double>() == 210003.0); });
  const Tensor a = random_tensor({333, 517}, gen);
  for_each_isa_and_threads([&] {
    const std::vector<float> first = ops::sum(a).to_vector<float>();
    const std::vector<float> again = ops::sum(a).to_vector<float>();
    CHECK(first == again);
  });
}

TEST_CASE("max and argmax skip NaN on every ISA") {
  std::vector<float> values(37);
  for (int i = 0; i < 37; ++i) values[i] = static_cast<float>(i % 7) - 10.0f;
  values[0] = values[16] = values[36] = std::numeric_limits<float>::quiet_NaN();
  values[20] = 5.0f;
  const Tensor a = from_vector<float>(values);
  const Tensor rows = from_vector<float>(values).view({1, 37}).expand({3, 37}).contiguous();
  for_each_isa_and_threads([&] {
    CHECK(ops::max(a).item<float>() == 5.0f);
    CHECK(ops::max(rows, {0}).to_vector<float>()[20] == 5.0f);
    CHECK(ops::max(rows, {0}).to_vector<float>()[1] == values[1]);
    CHECK(ops::argmax(a, 0).item<std::int64_t>() == 20);
  });
}

TEST_CASE("reductions give identical bits with 1 and 2 threads") {
  Generator gen(26);
  const Tensor a = random_tensor({257, 1031}, gen);
  const std::vector<ops::Axes> axes_list = {{}, {0}, {1}};
  const int saved_threads = num_threads();
  for (const ops::Axes& axes : axes_list) {
    set_num_threads(1);
    const std::vector<float> one = ops::sum(a, axes).to_vector<float>();
    set_num_threads(2);
    const std::vector<float> two = ops::sum(a, axes).to_vector<float>();
    set_num_threads(saved_threads);
    CHECK(one == two);
  }
}

TEST_CASE("empty reductions") {
  CHECK(ops::sum(zeros({0, 3}), {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(ops::sum(zeros({3, 0}), {0}).shape() == Shape{0});
  CHECK(std::isnan(ops::mean(zeros({0, 2}), {0}).to_vector<float>()[0]));
  CHECK_THROWS_AS(ops::max(zeros({0, 3}), {0}), ValueError);
}

TEST_CASE("argmax picks the first largest element on ties") {
  Generator gen(24);
  for_each_isa_and_threads([&] {
    CHECK(ops::argmax(from_vector<float>({1, 5, 5, 2}), 0).item<std::int64_t>() == 1);
    CHECK(ops::argmax(from_vector<float>({3, 3, 3}), 0).item<std::int64_t>() == 0);
  });
  CHECK(ops::argmax(random_tensor({4, 7}, gen).transpose(0, 1), 0).shape() == Shape{4});
}

TEST_CASE("sum_to to the same shape copies") {
  Tensor a = ones({3});
  Tensor same = ops::sum_to(a, {3});
  same.fill_(5.0);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 1, 1});
}
