// Reductions (sum, mean, max over any axes, keepdim), argmax and sum_to
// against double-precision reference loops, under every ISA and 1 and 2
// threads, on contiguous and strided inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;
using petal::test::check_close;
using petal::test::for_each_isa_and_threads;
using petal::test::random_tensor;

namespace {

enum class Kind { Sum, Mean, Max };

// Reference reduction in double: output in the keepdim shape.
std::vector<double> reference_reduce(const Tensor& a, const ops::Axes& axes, Kind kind) {
  const std::int64_t nd = a.dim();
  std::vector<bool> reduced(nd, axes.empty());
  for (std::int64_t axis : axes) reduced[axis < 0 ? axis + nd : axis] = true;
  Shape out_shape = a.shape();
  for (std::int64_t d = 0; d < nd; ++d)
    if (reduced[d]) out_shape[d] = 1;
  const std::int64_t out_numel = shape_numel(out_shape);
  std::vector<double> out(out_numel, kind == Kind::Max ? -std::numeric_limits<double>::infinity() : 0.0);
  std::vector<std::int64_t> count(out_numel, 0);
  const std::vector<double> v = a.to_vector<double>();
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(v.size()); ++i) {
    std::int64_t rest = i, o = 0, o_stride = 1;
    for (std::int64_t d = nd - 1; d >= 0; --d) {
      const std::int64_t idx = rest % a.shape()[d];
      rest /= a.shape()[d];
      if (!reduced[d]) o += idx * o_stride;
      o_stride *= out_shape[d];
    }
    out[o] = kind == Kind::Max ? std::max(out[o], v[i]) : out[o] + v[i];
    ++count[o];
  }
  if (kind == Kind::Mean)
    for (std::int64_t o = 0; o < out_numel; ++o) out[o] /= static_cast<double>(count[o]);
  return out;
}

Shape reduced_shape(const Shape& shape, const ops::Axes& axes, bool keepdim) {
  const std::int64_t nd = static_cast<std::int64_t>(shape.size());
  std::vector<bool> reduced(nd, axes.empty());
  for (std::int64_t axis : axes) reduced[axis < 0 ? axis + nd : axis] = true;
  Shape out;
  for (std::int64_t d = 0; d < nd; ++d) {
    if (!reduced[d]) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

struct ReduceCase {
  Shape shape;
  ops::Axes axes;
};

// Last axis, leading axes (narrow rows in blocks, wide rows in column strips),
// middle axes (NHWC over H, W), all axes, negative axes, size-1 axes; lengths
// around the SIMD widths and primes; a few large enough to use two threads.
const std::vector<ReduceCase>& reduce_cases() {
  static const std::vector<ReduceCase> cases = {
      {{1}, {}},           {{7}, {}},           {{17}, {0}},          {{100003}, {}},       {{5, 16}, {1}},
      {{5, 17}, {-1}},     {{3, 1}, {1}},       {{31, 8}, {0}},       {{31, 19}, {0}},      {{1000, 67}, {0}},
      {{67, 1000}, {1}},   {{2, 5, 7, 3}, {1, 2}}, {{4, 3, 5, 17}, {0, 1, 2}}, {{3, 4, 5}, {0, 2}}, {{3, 4, 5}, {-3, -1}},
      {{2, 3, 4, 5}, {0, 2}}, {{2, 3, 4, 5}, {1, 3}}, {{6, 1, 9}, {1}},   {{6, 1, 9}, {0, 1}},  {{64, 40, 33}, {0, 1}},
      {{3, 4}, {0, 1}},    {{300, 257}, {1}},   {{3, 4099}, {0}},     {{40, 4500}, {0}},    {{2, 3000, 24}, {0, 1}},
  };
  return cases;
}

}  // namespace

TEST_CASE("sum, mean and max over any axes, with and without keepdim") {
  Generator gen(21);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const ReduceCase& c : reduce_cases()) {
      const Tensor a = random_tensor(c.shape, gen, dtype);
      const std::vector<double> sum_ref = reference_reduce(a, c.axes, Kind::Sum);
      const std::vector<double> mean_ref = reference_reduce(a, c.axes, Kind::Mean);
      const std::vector<double> max_ref = reference_reduce(a, c.axes, Kind::Max);
      // float32 sums of n values of size <= 2 carry about sqrt(n) ulps of error.
      const double sum_atol = dtype == DType::Float32 ? 1e-5 * std::sqrt(static_cast<double>(a.numel())) : 1e-10;
      INFO(shape_str(c.shape), " axes ", c.axes.size(), " first ", c.axes.empty() ? 99 : c.axes[0], " ",
           std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        for (bool keepdim : {false, true}) {
          const Shape expected_shape = reduced_shape(c.shape, c.axes, keepdim);
          const Tensor s = ops::sum(a, c.axes, keepdim);
          CHECK(s.shape() == expected_shape);
          check_close(s, sum_ref, 1e-5, sum_atol);
          const Tensor m = ops::mean(a, c.axes, keepdim);
          CHECK(m.shape() == expected_shape);
          check_close(m, mean_ref, 1e-5, sum_atol);
          const Tensor x = ops::max(a, c.axes, keepdim);
          CHECK(x.shape() == expected_shape);
          check_close(x, max_ref, 0, 0);
        }
      });
    }
  }
}

TEST_CASE("reductions read strided inputs") {
  Generator gen(22);
  const Tensor base = random_tensor({19, 33}, gen);
  const std::vector<Tensor> inputs = {base.transpose(0, 1), base.slice(1, 1, 33, 3),
                                      random_tensor({4, 1, 9}, gen).expand({4, 6, 9})};
  for (const Tensor& a : inputs) {
    for (const ops::Axes& axes : {ops::Axes{}, ops::Axes{0}, ops::Axes{-1}}) {
      INFO(shape_str(a.shape()), " axes ", axes.size());
      for_each_isa_and_threads([&] {
        check_close(ops::sum(a, axes), reference_reduce(a, axes, Kind::Sum), 1e-5, 1e-5);
        check_close(ops::max(a, axes), reference_reduce(a, axes, Kind::Max), 0, 0);
      });
    }
  }
}

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

TEST_CASE("argmax picks the first largest element along an axis") {
  Generator gen(24);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const auto& [shape, axis] : std::vector<std::pair<Shape, std::int64_t>>{
             {{17}, 0}, {{5, 13}, 1}, {{5, 13}, 0}, {{3, 4, 5}, 1}, {{3, 4, 5}, -1}, {{400, 129}, 1}}) {
      const Tensor a = random_tensor(shape, gen, dtype);
      const std::int64_t d = axis < 0 ? axis + a.dim() : axis;
      std::int64_t outer = 1, inner = 1;
      for (std::int64_t i = 0; i < d; ++i) outer *= shape[i];
      for (std::int64_t i = d + 1; i < a.dim(); ++i) inner *= shape[i];
      const std::vector<double> v = a.to_vector<double>();
      std::vector<std::int64_t> expected;
      for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t i = 0; i < inner; ++i) {
          std::int64_t best = 0;
          for (std::int64_t j = 1; j < shape[d]; ++j)
            if (v[(o * shape[d] + j) * inner + i] > v[(o * shape[d] + best) * inner + i]) best = j;
          expected.push_back(best);
        }
      for_each_isa_and_threads([&] {
        const Tensor idx = ops::argmax(a, axis);
        CHECK(idx.dtype() == DType::Int64);
        CHECK(idx.to_vector<std::int64_t>() == expected);
      });
    }
  }
  CHECK(ops::argmax(from_vector<float>({1, 5, 5, 2}), 0).item<std::int64_t>() == 1);
  CHECK(ops::argmax(from_vector<float>({3, 3, 3}), 0).item<std::int64_t>() == 0);
  CHECK(ops::argmax(random_tensor({4, 7}, gen).transpose(0, 1), 0).shape() == Shape{4});
}

TEST_CASE("sum_to reduces a broadcast result back to the operand shape") {
  Generator gen(25);
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5, 19}, {19}}, {{5, 19}, {5, 1}}, {{5, 19}, {1, 19}}, {{2, 3, 4}, {3, 1}}, {{2, 3, 4}, {}},
      {{2, 3, 4}, {2, 3, 4}}, {{6, 1, 7}, {1, 7}}, {{300, 129}, {129}}};
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const auto& [from, to] : cases) {
      const Tensor a = random_tensor(from, gen, dtype);
      // Reference: every element lands on its broadcast source.
      std::vector<double> expected(shape_numel(to), 0.0);
      const std::vector<double> v = a.to_vector<double>();
      for (std::int64_t i = 0; i < a.numel(); ++i) expected[petal::test::broadcast_source_index(to, from, i)] += v[i];
      INFO(shape_str(from), " -> ", shape_str(to));
      for_each_isa_and_threads([&] {
        const Tensor s = ops::sum_to(a, to);
        CHECK(s.shape() == to);
        check_close(s, expected, 1e-5, 1e-5);
      });
    }
  }
  // Same shape: a copy, not an alias.
  Tensor a = ones({3});
  Tensor same = ops::sum_to(a, {3});
  same.fill_(5.0);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 1, 1});
}
