// Views share storage with their base and index the right elements.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

using namespace petal;

namespace {

// 0, 1, 2, ... in float32 with the given shape.
Tensor iota(const Shape& shape) { return arange(shape_numel(shape)).to(DType::Float32).reshape(shape); }

// The element at a multi-index, read through shape/strides/offset by hand.
float at(const Tensor& t, const std::vector<std::int64_t>& index) {
  REQUIRE(index.size() == t.shape().size());
  std::int64_t offset = t.offset();
  for (std::size_t i = 0; i < index.size(); ++i) offset += index[i] * t.strides()[i];
  return static_cast<const float*>(t.storage()->data())[offset];
}

}  // namespace

TEST_CASE("reshape and view of a contiguous tensor share storage") {
  Tensor t = iota({2, 3, 4});
  Tensor r = t.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 6});
  CHECK(r.storage() == t.storage());
  CHECK(r.strides() == Strides{6, 1});
  Tensor v = t.view({24});
  CHECK(v.storage() == t.storage());
  v.data<float>()[5] = 100.0f;
  CHECK(at(t, {0, 1, 1}) == 100.0f);
  CHECK(t.flatten().shape() == Shape{24});
  CHECK(t.flatten(1).shape() == Shape{2, 12});
  CHECK(t.flatten(0, 1).shape() == Shape{6, 4});
  CHECK(t.flatten(0, 1).storage() == t.storage());
}

TEST_CASE("reshape of a non-contiguous tensor copies, view refuses") {
  Tensor t = iota({3, 4}).transpose(0, 1);
  Tensor r = t.reshape({12});
  CHECK(r.storage() != t.storage());
  CHECK(r.to_vector<float>() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK_THROWS_AS(t.view({12}), ShapeError);
}

TEST_CASE("transpose and permute swap strides without copying") {
  Tensor t = iota({2, 3, 4});
  Tensor tr = t.transpose(0, 2);
  CHECK(tr.shape() == Shape{4, 3, 2});
  CHECK(tr.strides() == Strides{1, 4, 12});
  CHECK(tr.storage() == t.storage());
  CHECK_FALSE(tr.is_contiguous());
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 4; ++k) CHECK(at(tr, {k, j, i}) == at(t, {i, j, k}));
  Tensor p = t.permute({1, -1, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(at(p, {2, 1, 1}) == at(t, {1, 2, 1}));
  CHECK(t.transpose(-1, -2).shape() == Shape{2, 4, 3});
  // Permuting back gives the original layout.
  CHECK(p.permute({2, 0, 1}).strides() == t.strides());
}

TEST_CASE("slice picks [start, end) with a step and clamps like Python") {
  Tensor t = iota({4, 10});
  Tensor s = t.slice(1, 2, 9, 3);  // columns 2, 5, 8
  CHECK(s.shape() == Shape{4, 3});
  CHECK(s.storage() == t.storage());
  CHECK(s.offset() == 2);
  CHECK(s.strides() == Strides{10, 3});
  CHECK(s.select(0, 1).to_vector<float>() == std::vector<float>{12, 15, 18});
  CHECK(t.slice(1, -3, 10).select(0, 0).to_vector<float>() == std::vector<float>{7, 8, 9});
  CHECK(t.slice(0, 1, -1).shape() == Shape{2, 10});
  CHECK(t.slice(0, 2, 100).shape() == Shape{2, 10});
  CHECK(t.slice(0, 3, 1).shape() == Shape{0, 10});
  CHECK(t.slice(1, 0, 10, 4).shape() == Shape{4, 3});
  // A slice of a slice composes offsets and strides.
  Tensor ss = s.slice(0, 1, 4, 2);  // rows 1 and 3
  CHECK(ss.to_vector<float>() == std::vector<float>{12, 15, 18, 32, 35, 38});
}

TEST_CASE("select removes an axis; negative indices count from the end") {
  Tensor t = iota({2, 3, 4});
  Tensor s = t.select(1, -1);
  CHECK(s.shape() == Shape{2, 4});
  CHECK(s.storage() == t.storage());
  CHECK(s.to_vector<float>() == std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23});
  CHECK(t.select(0, 1).select(0, 0).select(0, 3).item<float>() == 15.0f);
}

TEST_CASE("writes through a view are visible in the base and in other views") {
  Tensor t = zeros({3, 4});
  Tensor column = t.select(1, 2);
  column.fill_(5.0);
  CHECK(t.to_vector<float>() == std::vector<float>{0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 5, 0});
  t.transpose(0, 1).select(0, 0).copy_(from_vector(std::vector<float>{1, 2, 3}));
  CHECK(t.select(1, 0).to_vector<float>() == std::vector<float>{1, 2, 3});
  CHECK(t.select(0, 1).to_vector<float>() == std::vector<float>{2, 0, 5, 0});
}

TEST_CASE("unsqueeze and squeeze add and remove size-1 axes") {
  Tensor t = iota({3, 4});
  CHECK(t.unsqueeze(0).shape() == Shape{1, 3, 4});
  CHECK(t.unsqueeze(1).shape() == Shape{3, 1, 4});
  CHECK(t.unsqueeze(2).shape() == Shape{3, 4, 1});
  CHECK(t.unsqueeze(-1).shape() == Shape{3, 4, 1});
  CHECK(t.unsqueeze(1).storage() == t.storage());
  CHECK(t.unsqueeze(1).is_contiguous());
  CHECK(t.unsqueeze(1).squeeze(1).shape() == Shape{3, 4});
  CHECK(t.unsqueeze(0).squeeze(0).to_vector<float>() == t.to_vector<float>());
  // Unsqueeze of a strided view keeps addressing the same elements.
  Tensor tr = t.transpose(0, 1).unsqueeze(1);  // [4, 1, 3]
  CHECK(at(tr, {2, 0, 1}) == at(t, {1, 2}));
}

TEST_CASE("expand broadcasts with stride 0 and adds leading axes") {
  Tensor row = from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  Tensor e = row.expand({2, 4, 3});
  CHECK(e.shape() == Shape{2, 4, 3});
  CHECK(e.strides() == Strides{0, 0, 1});
  CHECK(e.storage() == row.storage());
  CHECK_FALSE(e.is_contiguous());
  const std::vector<float> values = e.to_vector<float>();
  REQUIRE(values.size() == 24);
  for (std::size_t i = 0; i < values.size(); ++i) CHECK(values[i] == static_cast<float>(i % 3 + 1));
  Tensor col = from_vector(std::vector<float>{7, 8}, {2, 1});
  CHECK(col.expand({2, 2}).to_vector<float>() == std::vector<float>{7, 7, 8, 8});
}

TEST_CASE("size-1 axes do not break contiguity whatever their stride") {
  Tensor t = iota({3, 1, 4});
  Tensor odd(t.storage(), {3, 1, 4}, {4, 999, 1}, 0, DType::Float32);
  CHECK(odd.is_contiguous());
  CHECK(odd.view({12}).to_vector<float>() == t.to_vector<float>());
}
