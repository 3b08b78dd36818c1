// Tensor factories, element access (item/to_vector) and metadata.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

using namespace petal;

TEST_CASE("zeros, ones and full fill every element with the value, in every dtype") {
  for (DType dt : {DType::Float32, DType::Float64, DType::UInt8, DType::Int64}) {
    CAPTURE(dtype_name(dt));
    Tensor z = zeros({2, 3}, dt);
    CHECK(z.dtype() == dt);
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.strides() == Strides{3, 1});
    CHECK(z.numel() == 6);
    CHECK(z.nbytes() == 6 * dtype_size(dt));
    CHECK(z.is_contiguous());
    CHECK(z.device() == Device::cpu());
    CHECK(z.to_vector<double>() == std::vector<double>(6, 0.0));
    CHECK(ones({4}, dt).to_vector<double>() == std::vector<double>(4, 1.0));
    CHECK(full({3, 1}, 7.0, dt).to_vector<double>() == std::vector<double>(3, 7.0));
  }
}

TEST_CASE("full converts the value to the dtype like a C++ cast") {
  CHECK(full({2}, 2.75, DType::Int64).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 2});
  CHECK(full({1}, 0.1, DType::Float32).item<float>() == 0.1f);
  CHECK(full({1}, 0.1, DType::Float64).item<double>() == 0.1);
}

TEST_CASE("empty shapes and scalars") {
  Tensor scalar = full({}, 3.5);
  CHECK(scalar.dim() == 0);
  CHECK(scalar.numel() == 1);
  CHECK(scalar.item<float>() == 3.5f);
  Tensor none = zeros({0, 4});
  CHECK(none.numel() == 0);
  CHECK(none.to_vector<float>().empty());
  CHECK(none.str() == "Tensor(float32, [0, 4], cpu)");
}

TEST_CASE("arange counts from start below end by step") {
  CHECK(arange(5).dtype() == DType::Int64);
  CHECK(arange(5).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(1.0, 2.0, 0.25).to_vector<float>() == std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f});
  CHECK(arange(5.0, 0.0, -2.0, DType::Float64).to_vector<double>() == std::vector<double>{5.0, 3.0, 1.0});
  CHECK(arange(3.0, 3.0).numel() == 0);
  CHECK(arange(3.0, 1.0).numel() == 0);  // wrong direction: empty, like NumPy
  CHECK(arange(0).numel() == 0);
}

TEST_CASE("from_vector keeps values in C order and infers the dtype") {
  Tensor t = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.dtype() == DType::Float32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.data<float>()[4] == 5.0f);
  CHECK(t.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});
  Tensor labels = from_vector(std::vector<std::int64_t>{3, 0, 4});
  CHECK(labels.dtype() == DType::Int64);
  CHECK(labels.shape() == Shape{3});
  Tensor pixels = from_vector(std::vector<std::uint8_t>{0, 128, 255});
  CHECK(pixels.dtype() == DType::UInt8);
  CHECK(pixels.to_vector<float>() == std::vector<float>{0.0f, 128.0f, 255.0f});
}

TEST_CASE("item converts the single element and to_vector converts all of them") {
  Tensor t = from_vector(std::vector<double>{2.5}, {1, 1});
  CHECK(t.item<double>() == 2.5);
  CHECK(t.item<float>() == 2.5f);
  CHECK(t.item<std::int64_t>() == 2);
  Tensor many = from_vector(std::vector<std::int64_t>{-1, 7});
  CHECK(many.to_vector<double>() == std::vector<double>{-1.0, 7.0});
}

TEST_CASE("data<T>() gives a 64-byte aligned pointer to the first element") {
  for (std::int64_t n : {1, 3, 17, 1000, 100000}) {
    Tensor t = Tensor::empty({n});
    CHECK(reinterpret_cast<std::uintptr_t>(t.data<float>()) % 64 == 0);
  }
  Tensor pinned = Tensor::empty_pinned({5}, DType::UInt8);
  CHECK(reinterpret_cast<std::uintptr_t>(pinned.data<std::uint8_t>()) % 64 == 0);
  CHECK(pinned.device() == Device::cpu());
}

TEST_CASE("size() accepts negative axes; str() shows dtype, shape, device and values") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK(from_vector(std::vector<float>{1, 2, 3}).str() == "Tensor(float32, [3], cpu) [1, 2, 3]");
  const std::string long_text = arange(100).str();
  CHECK(long_text.find("... (100 values)") != std::string::npos);
  CHECK(Tensor().str() == "Tensor(undefined)");
  CHECK_FALSE(Tensor().defined());
}

TEST_CASE("uniform and normal factories are reproducible from a seed") {
  Generator a(123), b(123), c(124);
  Tensor x = uniform({50}, -2.0, 3.0, a);
  Tensor y = uniform({50}, -2.0, 3.0, b);
  Tensor z = uniform({50}, -2.0, 3.0, c);
  CHECK(x.to_vector<float>() == y.to_vector<float>());
  CHECK(x.to_vector<float>() != z.to_vector<float>());
  for (float v : x.to_vector<float>()) {
    CHECK(v >= -2.0f);
    CHECK(v < 3.0f);
  }
  Tensor n1 = normal({8}, 1.0, 0.5, a, DType::Float64);
  Tensor n2 = normal({8}, 1.0, 0.5, b, DType::Float64);
  CHECK(n1.dtype() == DType::Float64);
  CHECK(n1.to_vector<double>() == n2.to_vector<double>());
}

TEST_CASE("the default generator is reseeded by manual_seed") {
  manual_seed(99);
  const std::vector<float> first = uniform({10}, 0.0, 1.0).to_vector<float>();
  manual_seed(99);
  CHECK(uniform({10}, 0.0, 1.0).to_vector<float>() == first);
}
