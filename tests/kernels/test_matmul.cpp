// ops::matmul beyond the op registry (tests/ops runs every 2-D and batched
// entry, every transpose flag and view layout, on every ISA): sliced views
// with leading-dimension strides, outer products, a permuted batch, empty K.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/kernels/ops_test_support.hpp"
#include "tests/ops/op_registry.hpp"

using namespace petal;
using petal::test::for_each_isa_and_threads;
using petal::test::random_tensor;

namespace {

void check_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const petal::test::Reference ref = petal::test::reference_matmul(a, b, ta, tb);
  const double eps = a.dtype() == DType::Float32 ? 1e-5 : 1e-13;
  INFO(shape_str(a.shape()), ta ? "^T" : "", " @ ", shape_str(b.shape()), tb ? "^T" : "", " ",
       std::string(dtype_name(a.dtype())));
  for_each_isa_and_threads([&] {
    const Tensor out = ops::matmul(a, b, ta, tb);
    REQUIRE(out.dtype() == a.dtype());
    const std::string mismatch = petal::test::compare_with_reference(out, ref, eps, 1e-30);
    INFO(mismatch);
    CHECK(mismatch.empty());
  });
}

}  // namespace

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

TEST_CASE("matmul with an empty inner dimension gives zeros") {
  const Tensor out = ops::matmul(zeros({3, 0}), zeros({0, 4}));
  CHECK(out.shape() == Shape{3, 4});
  CHECK(out.to_vector<float>() == std::vector<float>(12, 0.0f));
  CHECK(ops::matmul(zeros({0, 5}), zeros({5, 2})).shape() == Shape{0, 2});
}
