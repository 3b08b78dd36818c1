// contiguous/clone/copy_/to(dtype)/fill_ on strided inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

using namespace petal;

namespace {
Tensor iota(const Shape& shape, DType dtype = DType::Float32) {
  return arange(shape_numel(shape)).to(dtype).reshape(shape);
}
}  // namespace

TEST_CASE("contiguous returns the same tensor when already contiguous, a packed copy otherwise") {
  Tensor t = iota({2, 3});
  CHECK(t.contiguous().storage() == t.storage());
  Tensor tr = t.transpose(0, 1);
  Tensor c = tr.contiguous();
  CHECK(c.storage() != t.storage());
  CHECK(c.is_contiguous());
  CHECK(c.shape() == Shape{3, 2});
  CHECK(c.strides() == Strides{2, 1});
  CHECK(c.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("contiguous handles slices with an offset, steps, broadcasts and many axes") {
  Tensor t = iota({3, 4, 5});
  Tensor s = t.slice(0, 1, 3).slice(2, 1, 5, 2).transpose(0, 2);  // [2, 4, 2]
  Tensor c = s.contiguous();
  REQUIRE(c.shape() == Shape{2, 4, 2});
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 4; ++j)
      for (std::int64_t k = 0; k < 2; ++k) {
        const float expected = static_cast<float>((1 + k) * 20 + j * 5 + (1 + 2 * i));
        CHECK(c.data<float>()[(i * 4 + j) * 2 + k] == expected);
      }
  Tensor b = from_vector(std::vector<float>{1, 2}, {2, 1}).expand({2, 3}).contiguous();
  CHECK(b.to_vector<float>() == std::vector<float>{1, 1, 1, 2, 2, 2});
  Tensor five_d = iota({2, 1, 3, 1, 2}).permute({4, 3, 2, 1, 0}).contiguous();
  CHECK(five_d.to_vector<float>() ==
        std::vector<float>{0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11});
}

TEST_CASE("clone always copies and leaves the source alone") {
  Tensor t = iota({4});
  Tensor c = t.clone();
  CHECK(c.storage() != t.storage());
  c.fill_(-1.0);
  CHECK(t.to_vector<float>() == std::vector<float>{0, 1, 2, 3});
  Tensor s = iota({4, 4}).slice(1, 1, 3);
  CHECK(s.clone().to_vector<float>() == std::vector<float>{1, 2, 5, 6, 9, 10, 13, 14});
}

TEST_CASE("copy_ writes a strided source into a strided destination, converting dtypes") {
  Tensor dst = zeros({3, 3}, DType::Float64);
  Tensor src = iota({3, 3}, DType::Int64).transpose(0, 1);
  dst.copy_(src);
  CHECK(dst.to_vector<double>() == std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8});
  Tensor big = zeros({4, 6});
  big.slice(0, 1, 3).slice(1, 0, 6, 2).copy_(from_vector(std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}, {2, 3}));
  CHECK(big.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 0, 0,  //
                                                     1, 0, 2, 0, 3, 0,  //
                                                     4, 0, 5, 0, 6, 0,  //
                                                     0, 0, 0, 0, 0, 0});
  // A same-sized source of another shape is copied in C order.
  Tensor flat = zeros({2, 3});
  flat.copy_(iota({6}));
  CHECK(flat.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("copy_ from an overlapping view of the same storage reads the values before the copy") {
  Tensor square = iota({3, 3});
  square.copy_(square.transpose(0, 1));
  CHECK(square.to_vector<float>() == std::vector<float>{0, 3, 6, 1, 4, 7, 2, 5, 8});
  Tensor row = iota({6});
  row.slice(0, 1, 6).copy_(row.slice(0, 0, 5));  // shift right by one
  CHECK(row.to_vector<float>() == std::vector<float>{0, 0, 1, 2, 3, 4});
  Tensor same = iota({4});
  same.copy_(same);
  CHECK(same.to_vector<float>() == std::vector<float>{0, 1, 2, 3});
}

TEST_CASE("to(dtype) converts like a C++ cast and is a no-op for the same dtype") {
  Tensor f = from_vector(std::vector<float>{-1.5f, 0.25f, 2.75f, 255.0f});
  CHECK(f.to(DType::Float32).storage() == f.storage());
  CHECK(f.to(DType::Int64).to_vector<std::int64_t>() == std::vector<std::int64_t>{-1, 0, 2, 255});
  CHECK(f.to(DType::Float64).to_vector<double>() == std::vector<double>{-1.5, 0.25, 2.75, 255.0});
  Tensor u = f.slice(0, 1, 4).to(DType::UInt8);
  CHECK(u.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 2, 255});
  // Strided source: the result is contiguous in the logical order.
  Tensor strided = iota({2, 3}).transpose(0, 1).to(DType::Float64);
  CHECK(strided.is_contiguous());
  CHECK(strided.to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("fill_ on a strided view only touches the view's elements") {
  Tensor t = zeros({4, 4}, DType::Int64);
  t.slice(0, 0, 4, 2).slice(1, 1, 4, 2).fill_(9);
  CHECK(t.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 9, 0, 9,  //
                                                                 0, 0, 0, 0,  //
                                                                 0, 9, 0, 9,  //
                                                                 0, 0, 0, 0});
  t.zero_();
  CHECK(t.to_vector<std::int64_t>() == std::vector<std::int64_t>(16, 0));
  Tensor nan = full({2}, std::nan(""), DType::Float32);
  CHECK(std::isnan(nan.to_vector<float>()[1]));
}

TEST_CASE("to(Device::cpu()) on a CPU tensor returns it unchanged") {
  Tensor t = iota({3});
  CHECK(t.to(Device::cpu()).storage() == t.storage());
}
