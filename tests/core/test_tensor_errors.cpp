// Bad input throws the right petal::Error subclass, with a message that names
// the operation and the offending shapes, axes or dtypes. Nothing crashes.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "tests/doctest_skip.hpp"

using namespace petal;

namespace {

// Runs fn, expects ErrorType, and returns its message ("" if none was thrown).
template <class ErrorType>
std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ErrorType& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: ", e.what());
    return "";
  }
  FAIL("no exception thrown");
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("every error is a petal::Error and a std::runtime_error") {
  CHECK_THROWS_AS(zeros({2}).view({3}), Error);
  CHECK_THROWS_AS(zeros({2}).view({3}), std::runtime_error);
}

TEST_CASE("reshape/view to a wrong element count names both shapes") {
  const Tensor t = zeros({2, 3});
  const std::string msg = message_of<ShapeError>([&] { t.reshape({4, 2}); });
  CHECK(contains(msg, "reshape"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[4, 2]"));
  CHECK(contains(message_of<ShapeError>([&] { t.reshape({-1, -1}); }), "more than one -1"));
  CHECK(contains(message_of<ShapeError>([&] { t.reshape({-1, 4}); }), "[-1, 4]"));
  CHECK(contains(message_of<ShapeError>([&] { t.reshape({-2, -3}); }), "negative"));
  const std::string view_msg = message_of<ShapeError>([&] { t.transpose(0, 1).view({6}); });
  CHECK(contains(view_msg, "not contiguous"));
  CHECK(contains(view_msg, "[3, 2]"));
}

TEST_CASE("out-of-range axes throw IndexError naming the op and the axis") {
  const Tensor t = zeros({2, 3});
  const std::string msg = message_of<IndexError>([&] { t.transpose(0, 2); });
  CHECK(contains(msg, "transpose"));
  CHECK(contains(msg, "axis 2"));
  CHECK(contains(msg, "2 dimensions"));
  CHECK(contains(message_of<IndexError>([&] { t.size(-3); }), "size"));
  CHECK(contains(message_of<IndexError>([&] { t.slice(5, 0, 1); }), "slice"));
  CHECK(contains(message_of<IndexError>([&] { t.select(2, 0); }), "select"));
  CHECK(contains(message_of<IndexError>([&] { t.unsqueeze(4); }), "unsqueeze"));
  CHECK(contains(message_of<IndexError>([&] { t.squeeze(-5); }), "squeeze"));
  CHECK(contains(message_of<IndexError>([&] { t.flatten(3); }), "flatten"));
  CHECK(contains(message_of<IndexError>([&] { t.permute({0, 0}); }), "appears twice"));
  CHECK(contains(message_of<IndexError>([&] { zeros({}).transpose(0, 0); }), "0 dimensions"));
}

TEST_CASE("select with an index outside the axis throws IndexError with the size") {
  const Tensor t = zeros({2, 3});
  const std::string msg = message_of<IndexError>([&] { t.select(1, 3); });
  CHECK(contains(msg, "index 3"));
  CHECK(contains(msg, "size 3"));
  CHECK_THROWS_AS(t.select(0, -3), IndexError);
}

TEST_CASE("shape mismatches in views and copies throw ShapeError") {
  const Tensor t = zeros({2, 3});
  CHECK(contains(message_of<ShapeError>([&] { t.permute({1, 0, 2}); }), "permute"));
  CHECK(contains(message_of<ShapeError>([&] { t.squeeze(0); }), "is not 1"));
  const std::string expand_msg = message_of<ShapeError>([&] { t.expand({4, 3}); });
  CHECK(contains(expand_msg, "expand"));
  CHECK(contains(expand_msg, "[2, 3]"));
  CHECK(contains(expand_msg, "[4, 3]"));
  CHECK_THROWS_AS(t.expand({3}), ShapeError);
  CHECK(contains(message_of<ShapeError>([&] { t.expand({-1, 2, 3}); }), "[-1, 2, 3]"));
  Tensor dst = zeros({2, 2});
  const std::string copy_msg = message_of<ShapeError>([&] { dst.copy_(t); });
  CHECK(contains(copy_msg, "copy_"));
  CHECK(contains(copy_msg, "[2, 3]"));
  CHECK(contains(copy_msg, "[2, 2]"));
  CHECK(contains(message_of<ShapeError>([&] { Tensor::empty({2, -1}); }), "negative"));
  CHECK(contains(message_of<ShapeError>([&] { from_vector(std::vector<float>{1, 2, 3}, {2, 2}); }),
                 "from_vector"));
  CHECK(contains(message_of<ShapeError>([&] { zeros({2}).item<float>(); }), "item"));
}

TEST_CASE("invalid values throw ValueError") {
  const Tensor t = zeros({4});
  CHECK(contains(message_of<ValueError>([&] { t.slice(0, 0, 4, 0); }), "step"));
  CHECK(contains(message_of<ValueError>([&] { arange(0.0, 1.0, 0.0); }), "arange"));
  CHECK(contains(message_of<ValueError>([&] { Tensor().reshape({1}); }), "undefined"));
  CHECK_THROWS_AS(Tensor().to_vector<float>(), ValueError);
  CHECK_THROWS_AS(Tensor().clone(), ValueError);
  CHECK_THROWS_AS(Device::parse("tpu"), ValueError);
  CHECK_THROWS_AS(Device::parse("cuda:x"), ValueError);
  CHECK_THROWS_AS(Device::parse("cuda:"), ValueError);
  CHECK_THROWS_AS(Device::parse("cuda:99999999999999999999"), ValueError);
  CHECK_THROWS_AS(Device::parse("cuda:\xe9"), ValueError);
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::parse("cpu") == Device::cpu());
}

TEST_CASE("wrong dtypes throw DTypeError naming expected and actual dtype") {
  const Tensor t = zeros({2, 2}, DType::Int64);
  const std::string msg = message_of<DTypeError>([&] { t.data<float>(); });
  CHECK(contains(msg, "float32"));
  CHECK(contains(msg, "int64"));
  CHECK(contains(msg, "[2, 2]"));
  CHECK(contains(message_of<DTypeError>([&] { uniform({2}, 0, 1, default_generator(), DType::UInt8); }),
                 "uniform"));
  CHECK(contains(message_of<DTypeError>([&] { normal({2}, 0, 1, default_generator(), DType::Int64); }),
                 "normal"));
}

TEST_CASE("a CUDA tensor without a CUDA backend throws DeviceError" *
          doctest::skip(test::skip_because(test::kBuiltWithCuda, "built with CUDA: the backend exists"))) {
  REQUIRE_FALSE(has_device_backend(DeviceType::CUDA));
  const std::string msg = message_of<DeviceError>([] { zeros({2}, DType::Float32, Device::cuda()); });
  CHECK(contains(msg, "cuda"));
}

TEST_CASE("shapes whose element count overflows are rejected, not allocated") {
  const std::int64_t huge = std::int64_t{1} << 40;
  CHECK_THROWS_AS(Tensor::empty({huge, huge}), ShapeError);
}

TEST_CASE("broadcast_shapes and normalize_axis") {
  CHECK(broadcast_shapes({3, 1, 5}, {4, 1}, "add") == Shape{3, 4, 5});
  CHECK(broadcast_shapes({}, {2}, "add") == Shape{2});
  const std::string msg = message_of<ShapeError>([] { broadcast_shapes({2, 3}, {4, 3}, "mul"); });
  CHECK(contains(msg, "mul"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[4, 3]"));
  CHECK(normalize_axis(-1, 3, "sum") == 2);
  CHECK(contains(message_of<IndexError>([] { normalize_axis(3, 3, "sum"); }), "sum"));
}
