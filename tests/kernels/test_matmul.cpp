// ops::matmul (2-D and batched 3-D, transpose flags, strided views) against
// a double-precision triple loop, under every ISA and 1 and 2 threads.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;
using petal::test::for_each_isa_and_threads;
using petal::test::random_tensor;

namespace {

// Reference op(a) @ op(b) per batch, with the error bound of each element:
// float32 accumulates rounding in proportion to sum |a_ik * b_kj|.
struct MatmulReference {
  std::vector<double> value, magnitude;
};

MatmulReference reference_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const bool batched = a.dim() == 3;
  const Tensor a3 = batched ? a : a.unsqueeze(0), b3 = batched ? b : b.unsqueeze(0);
  const std::int64_t batch = a3.shape()[0];
  const std::int64_t ar = a3.shape()[1], ac = a3.shape()[2], br = b3.shape()[1], bc = b3.shape()[2];
  const std::int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  const std::vector<double> va = a3.to_vector<double>(), vb = b3.to_vector<double>();
  MatmulReference ref;
  for (std::int64_t p = 0; p < batch; ++p)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0, mag = 0;
        for (std::int64_t q = 0; q < k; ++q) {
          const double x = va[p * ar * ac + (ta ? q * ac + i : i * ac + q)];
          const double y = vb[p * br * bc + (tb ? j * bc + q : q * bc + j)];
          s += x * y;
          mag += std::abs(x * y);
        }
        ref.value.push_back(s);
        ref.magnitude.push_back(mag);
      }
  return ref;
}

void check_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const MatmulReference ref = reference_matmul(a, b, ta, tb);
  const double eps = a.dtype() == DType::Float32 ? 1e-5 : 1e-13;
  INFO(shape_str(a.shape()), ta ? "^T" : "", " @ ", shape_str(b.shape()), tb ? "^T" : "", " ",
       std::string(dtype_name(a.dtype())));
  for_each_isa_and_threads([&] {
    const Tensor out = ops::matmul(a, b, ta, tb);
    REQUIRE(out.dtype() == a.dtype());
    const std::vector<double> got = out.to_vector<double>();
    REQUIRE(got.size() == ref.value.size());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      if (!(std::abs(got[i] - ref.value[i]) <= eps * ref.magnitude[i] + 1e-30)) ++bad;
    CHECK(bad == 0);
  });
}

// A [rows, cols] operand for the given transpose flag: stored as [cols, rows]
// when transposed, so op(t) has the logical shape.
Tensor operand(std::int64_t rows, std::int64_t cols, bool transposed, Generator& gen, DType dtype,
               std::int64_t batch = 0) {
  Shape shape = transposed ? Shape{cols, rows} : Shape{rows, cols};
  if (batch > 0) shape.insert(shape.begin(), batch);
  return random_tensor(shape, gen, dtype);
}

}  // namespace

TEST_CASE("2-D matmul with every transpose combination") {
  Generator gen(41);
  // (m, k, n): ones, primes, around the SIMD widths and the GEMM tiles.
  const std::vector<std::array<std::int64_t, 3>> sizes = {
      {1, 1, 1}, {1, 7, 1}, {3, 1, 4}, {7, 13, 5}, {17, 33, 16}, {16, 8, 31}, {1, 300, 1}, {64, 48, 129}, {97, 61, 2}};
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const auto& [m, k, n] : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          const Tensor a = operand(m, k, ta, gen, dtype), b = operand(k, n, tb, gen, dtype);
          const Tensor out = ops::matmul(a, b, ta, tb);
          CHECK(out.shape() == Shape{m, n});
          check_matmul(a, b, ta, tb);
        }
}

TEST_CASE("matmul reads transposed, sliced and expanded views without a copy mistake") {
  Generator gen(42);
  const Tensor big = random_tensor({40, 50}, gen);
  const std::vector<std::pair<Tensor, Tensor>> pairs = {
      {big.transpose(0, 1), random_tensor({40, 9}, gen)},                 // column-major lhs [50, 40]
      {random_tensor({6, 50}, gen), big.transpose(0, 1)},                 // column-major rhs [50, 40]
      {big.slice(1, 3, 20), random_tensor({17, 5}, gen)},                 // row stride 50 (leading dim)
      {big.slice(1, 0, 50, 2), random_tensor({25, 3}, gen)},              // column stride 2: copied
      {big.slice(0, 0, 1), random_tensor({50, 4}, gen)},                  // one row
      {random_tensor({5, 1}, gen), big.slice(0, 7, 8)},                   // outer product [5,1] @ [1,50]
      {big.transpose(0, 1).slice(0, 0, 1), big.slice(0, 0, 40).slice(1, 0, 7)},  // [1,40] with stride 50
  };
  for (const auto& [a, b] : pairs) check_matmul(a, b, false, false);
  // Transposed views combined with the transpose flags.
  check_matmul(big.transpose(0, 1), random_tensor({50, 9}, gen), true, false);
  check_matmul(random_tensor({8, 40}, gen), big.transpose(0, 1), false, true);
}

TEST_CASE("batched 3-D matmul") {
  Generator gen(43);
  const std::vector<std::array<std::int64_t, 4>> sizes = {
      {1, 3, 4, 5}, {5, 7, 13, 5}, {3, 17, 33, 16}, {9, 1, 8, 1}, {2, 70, 90, 60}, {33, 4, 4, 4}};
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const auto& [batch, m, k, n] : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          const Tensor a = operand(m, k, ta, gen, dtype, batch), b = operand(k, n, tb, gen, dtype, batch);
          CHECK(ops::matmul(a, b, ta, tb).shape() == Shape{batch, m, n});
          check_matmul(a, b, ta, tb);
        }
  // Strided batches: a permuted (batch, col, row) view and an expanded batch.
  const Tensor permuted = random_tensor({6, 4, 3}, gen).permute({2, 0, 1});  // [3, 6, 4]
  check_matmul(permuted, random_tensor({3, 4, 5}, gen), false, false);
  const Tensor shared = random_tensor({1, 4, 5}, gen).expand({3, 4, 5});
  check_matmul(random_tensor({3, 2, 4}, gen), shared, false, false);
}

TEST_CASE("matmul with an empty inner dimension gives zeros") {
  const Tensor out = ops::matmul(zeros({3, 0}), zeros({0, 4}));
  CHECK(out.shape() == Shape{3, 4});
  CHECK(out.to_vector<float>() == std::vector<float>(12, 0.0f));
  CHECK(ops::matmul(zeros({0, 5}), zeros({5, 2})).shape() == Shape{0, 2});
}
