// Bad input to kernels/ops: every op throws the right petal::Error subclass
// with a message naming the op and the offending shapes, axes or dtypes,
// before any kernel runs.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "core/storage.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "kernels/ops.hpp"
#include "tests/doctest_skip.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;
using petal::test::check_error;

namespace {

// A tensor that claims to live on a CUDA device (host memory underneath, never
// read): enough to reach the backend switch without a CUDA build.
Tensor fake_cuda_tensor(const Shape& shape) {
  auto buffer = std::make_shared<std::vector<float>>(shape_numel(shape));
  auto storage = std::make_shared<Storage>(buffer->data(), buffer->size() * sizeof(float), Device::cuda(0),
                                           [buffer](void*) {});
  return Tensor(storage, shape, contiguous_strides(shape), 0, DType::Float32);
}

}  // namespace

TEST_CASE("binary ops: shapes, dtypes, undefined tensors") {
  const Tensor a = zeros({2, 3}), b = zeros({4});
  check_error<ShapeError>([&] { ops::add(a, b); }, {"add", "[2, 3]", "[4]"});
  check_error<ShapeError>([&] { ops::mul(zeros({5, 2}), zeros({3, 1})); }, {"mul", "[5, 2]", "[3, 1]"});
  check_error<DTypeError>([&] { ops::sub(a, zeros({2, 3}, DType::Float64)); }, {"sub", "float32", "float64", "[2, 3]"});
  check_error<DTypeError>([&] { ops::div(zeros({3}, DType::Int64), zeros({3}, DType::Int64)); },
                          {"div", "int64", "[3]"});
  check_error<DTypeError>([&] { ops::maximum(zeros({3}, DType::UInt8), zeros({3})); }, {"maximum", "uint8", "[3]"});
  check_error<ValueError>([&] { ops::minimum(a, Tensor()); }, {"minimum", "undefined", "[2, 3]"});
}

TEST_CASE("in-place ops: target shape, broadcast targets") {
  Tensor small = zeros({3});
  check_error<ShapeError>([&] { ops::add_(small, zeros({2, 3})); }, {"add_", "[3]", "[2, 3]"});
  Tensor expanded = zeros({1, 3}).expand({4, 3});
  check_error<ValueError>([&] { ops::add_(expanded, zeros({3})); }, {"add_", "[4, 3]", "broadcast"});
  check_error<ValueError>([&] { ops::mul_scalar_(expanded, 2.0); }, {"mul_scalar_", "[4, 3]"});
  Tensor ints = zeros({2}, DType::Int64);
  check_error<DTypeError>([&] { ops::mul_scalar_(ints, 2.0); }, {"mul_scalar_", "int64", "[2]"});
}

TEST_CASE("unary and backward helpers") {
  check_error<DTypeError>([&] { ops::exp(zeros({2, 2}, DType::Int64)); }, {"exp", "int64", "[2, 2]"});
  check_error<DTypeError>([&] { ops::pow_scalar(zeros({4}, DType::UInt8), 2.0); }, {"pow_scalar", "uint8", "[4]"});
  check_error<ValueError>([&] { ops::tanh(Tensor()); }, {"tanh", "undefined"});
  check_error<ValueError>([&] { ops::clamp(zeros({3}), 2.0, 1.0); }, {"clamp", "[3]"});
  check_error<ShapeError>([&] { ops::relu_backward(zeros({2, 3}), zeros({3})); },
                          {"relu_backward", "[2, 3]", "[3]"});
  check_error<ShapeError>([&] { ops::sigmoid_backward(zeros({4}), zeros({5})); }, {"sigmoid_backward", "[4]", "[5]"});
  check_error<DTypeError>([&] { ops::tanh_backward(zeros({4}), zeros({4}, DType::Float64)); },
                          {"tanh_backward", "float32", "float64"});
  check_error<DTypeError>([&] { ops::gelu(zeros({2}, DType::Int64)); }, {"gelu", "int64", "[2]"});
  check_error<DTypeError>([&] { ops::silu(zeros({2}, DType::UInt8)); }, {"silu", "uint8", "[2]"});
  check_error<ValueError>([&] { ops::softplus(Tensor()); }, {"softplus", "undefined"});
  check_error<DTypeError>([&] { ops::leaky_relu(zeros({3}, DType::Int64)); }, {"leaky_relu", "int64", "[3]"});
  check_error<ShapeError>([&] { ops::pow(zeros({2, 3}), zeros({4})); }, {"pow", "[2, 3]", "[4]"});
  check_error<ShapeError>([&] { ops::gelu_backward(zeros({4}), zeros({5})); }, {"gelu_backward", "[4]", "[5]"});
}

TEST_CASE("reductions: axes, dtypes, empty max") {
  const Tensor a = zeros({2, 3});
  check_error<IndexError>([&] { ops::sum(a, {2}); }, {"sum", "axis 2", "[2, 3]"});
  check_error<IndexError>([&] { ops::mean(a, {-3}); }, {"mean", "axis -3", "[2, 3]"});
  check_error<IndexError>([&] { ops::max(a, {1, -1}); }, {"max", "twice", "[2, 3]"});
  check_error<IndexError>([&] { ops::sum(zeros({}), {0}); }, {"sum", "axis 0", "[]"});
  check_error<DTypeError>([&] { ops::sum(zeros({2}, DType::Int64)); }, {"sum", "int64", "[2]"});
  check_error<ValueError>([&] { ops::max(zeros({0, 4}), {0}); }, {"max", "[0, 4]"});
  check_error<IndexError>([&] { ops::argmax(a, 5); }, {"argmax", "axis 5", "[2, 3]"});
  check_error<ValueError>([&] { ops::argmax(zeros({3, 0}), 1); }, {"argmax", "[3, 0]"});
  check_error<ShapeError>([&] { ops::sum_to(a, {4}); }, {"sum_to", "[2, 3]", "[4]"});
  check_error<IndexError>([&] { ops::min(a, {2}); }, {"min", "axis 2", "[2, 3]"});
  check_error<ValueError>([&] { ops::min(zeros({0, 4}), {0}); }, {"min", "[0, 4]"});
  check_error<DTypeError>([&] { ops::min(zeros({2}, DType::Int64)); }, {"min", "int64", "[2]"});
  check_error<IndexError>([&] { ops::variance(a, {-3}); }, {"variance", "axis -3", "[2, 3]"});
  check_error<DTypeError>([&] { ops::variance(zeros({2}, DType::UInt8)); }, {"variance", "uint8", "[2]"});
  check_error<ShapeError>([&] { ops::sum_to(a, {1, 2, 3}); }, {"sum_to", "[2, 3]", "[1, 2, 3]"});
  check_error<ValueError>([&] { ops::sum(Tensor()); }, {"sum", "undefined"});
}

TEST_CASE("softmax family and cross-entropy") {
  check_error<DTypeError>([&] { ops::softmax(zeros({2, 3}, DType::Int64)); }, {"softmax", "int64", "[2, 3]"});
  check_error<ShapeError>([&] { ops::softmax_backward(zeros({2, 3}), zeros({3, 2})); },
                          {"softmax_backward", "[2, 3]", "[3, 2]"});
  check_error<ShapeError>([&] { ops::log_softmax_backward(zeros({2, 3}), zeros({2, 4})); },
                          {"log_softmax_backward", "[2, 3]", "[2, 4]"});

  const Tensor logits = zeros({4, 3});
  check_error<IndexError>([&] { ops::softmax_cross_entropy(logits, from_vector<std::int64_t>({0, 1, 3, 2})); },
                          {"softmax_cross_entropy", "class 3", "row 2", "[4, 3]"});
  check_error<IndexError>([&] { ops::softmax_cross_entropy(logits, from_vector<std::int64_t>({0, -1, 1, 2})); },
                          {"softmax_cross_entropy", "class -1", "row 1", "[4, 3]"});
  check_error<ShapeError>([&] { ops::softmax_cross_entropy(logits, from_vector<std::int64_t>({0, 1, 2})); },
                          {"softmax_cross_entropy", "[3]", "[4, 3]"});
  check_error<ShapeError>([&] { ops::softmax_cross_entropy(zeros({12}), from_vector<std::int64_t>({0})); },
                          {"softmax_cross_entropy", "[12]"});
  check_error<ShapeError>([&] { ops::softmax_cross_entropy(logits, zeros({4, 2})); },
                          {"softmax_cross_entropy", "[4, 2]", "[4, 3]"});
  check_error<DTypeError>([&] { ops::softmax_cross_entropy(logits, zeros({4, 3}, DType::Float64)); },
                          {"softmax_cross_entropy", "float32", "float64"});
  check_error<DTypeError>([&] { ops::softmax_cross_entropy(logits, zeros({4}, DType::UInt8)); },
                          {"softmax_cross_entropy", "uint8", "[4]"});
  check_error<DTypeError>([&] { ops::softmax_cross_entropy(zeros({4, 3}, DType::Int64), zeros({4, 3})); },
                          {"softmax_cross_entropy", "int64", "[4, 3]"});
  check_error<ValueError>([&] { ops::softmax_cross_entropy(Tensor(), zeros({4, 3})); },
                          {"softmax_cross_entropy", "undefined"});

  const Tensor probs = full({4, 3}, 1.0 / 3.0);
  check_error<ShapeError>(
      [&] { ops::softmax_cross_entropy_backward(zeros({3}), probs, from_vector<std::int64_t>({0, 1, 2, 0})); },
      {"softmax_cross_entropy_backward", "[3]", "[4, 3]"});
  check_error<IndexError>(
      [&] { ops::softmax_cross_entropy_backward(ones({4}), probs, from_vector<std::int64_t>({0, 1, 7, 0})); },
      {"softmax_cross_entropy_backward", "class 7", "[4, 3]"});
}

TEST_CASE("matmul: ranks, inner and batch dimensions, dtypes") {
  check_error<ShapeError>([&] { ops::matmul(zeros({2, 3}), zeros({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]", "3 vs 4"});
  check_error<ShapeError>([&] { ops::matmul(zeros({2, 3}), zeros({2, 5}), true, true); },
                          {"matmul", "[2, 3]^T", "[2, 5]^T"});
  check_error<ShapeError>([&] { ops::matmul(zeros({2, 3}), zeros({1, 4, 5})); }, {"matmul", "[2, 3]", "[1, 4, 5]", "3 vs 4"});
  check_error<ShapeError>([&] { ops::matmul(zeros({2, 2, 3, 4}), zeros({3, 4, 5})); },
                          {"matmul", "batch dimensions [2, 2] and [3]", "[2, 2, 3, 4]", "[3, 4, 5]"});
  check_error<ShapeError>([&] { ops::matmul(zeros({4, 2, 3}), zeros({2, 3, 5})); }, {"matmul", "[4]", "[2]"});
  CHECK(ops::matmul(zeros({2, 3}), zeros({1, 3, 5})).shape() == Shape{1, 2, 5});
  CHECK(ops::matmul(zeros({2, 1, 3, 4}), zeros({6, 4, 5})).shape() == Shape{2, 6, 3, 5});
  check_error<ShapeError>([&] { ops::matmul(zeros({3}), zeros({3})); }, {"matmul", "at least 2 dimensions", "[3]"});
  check_error<ShapeError>([&] { ops::matmul(zeros({2, 3, 4}), zeros({4})); }, {"matmul", "[2, 3, 4]", "[4]"});
  check_error<ShapeError>([&] { ops::matmul(zeros({2, 3, 4}), zeros({3, 4, 5})); }, {"matmul", "[2, 3, 4]", "[3, 4, 5]"});
  check_error<DTypeError>([&] { ops::matmul(zeros({2, 3}, DType::Int64), zeros({3, 2}, DType::Int64)); },
                          {"matmul", "int64", "[2, 3]"});
  check_error<DTypeError>([&] { ops::matmul(zeros({2, 3}), zeros({3, 2}, DType::Float64)); },
                          {"matmul", "float32", "float64"});
}

TEST_CASE("concat: empty list, undefined tensors, axis, dtypes, shapes") {
  const Tensor a = zeros({2, 3}), b = zeros({4, 3});
  check_error<ValueError>([&] { ops::concat({}, 0); }, {"concat", "at least one", "axis 0"});
  check_error<ValueError>([&] { ops::concat({a, Tensor()}, 0); }, {"concat", "undefined", "axis 0", "[2, 3]"});
  check_error<IndexError>([&] { ops::concat({a, b}, 2); }, {"concat", "axis 2", "[2, 3]", "[4, 3]"});
  check_error<IndexError>([&] { ops::concat({a, b}, -3); }, {"concat", "axis -3", "[2, 3]", "[4, 3]"});
  check_error<IndexError>([&] { ops::concat({zeros({}), zeros({})}, 0); }, {"concat", "axis 0", "[]"});
  check_error<DTypeError>([&] { ops::concat({a, zeros({4, 3}, DType::Float64)}, 0); },
                          {"concat", "float64", "float32", "axis 0", "[2, 3]", "[4, 3]"});
  check_error<ShapeError>([&] { ops::concat({a, b}, 1); }, {"concat", "axis 1", "[2, 3]", "[4, 3]"});
  check_error<ShapeError>([&] { ops::concat({a, b}, -1); }, {"concat", "axis -1", "[2, 3]", "[4, 3]"});
  check_error<ShapeError>([&] { ops::concat({a, zeros({2, 3, 1})}, 0); }, {"concat", "axis 0", "[2, 3]", "[2, 3, 1]"});
  check_error<ShapeError>([&] { ops::concat({a, a, zeros({5, 4})}, 0); }, {"concat", "tensor 2", "[5, 4]"});
}

TEST_CASE("stack, split, pad, broadcast_to, slice gradient: axes, shapes, sizes") {
  const Tensor a = zeros({2, 3});
  check_error<IndexError>([&] { ops::stack({a, a}, 3); }, {"stack", "axis 3", "[2, 3]"});
  check_error<IndexError>([&] { ops::stack({a, a}, -4); }, {"stack", "axis -4", "[2, 3]"});
  check_error<ShapeError>([&] { ops::stack({a, zeros({3, 2})}, 0); }, {"stack", "tensor 1", "[3, 2]"});
  check_error<ValueError>([&] { ops::stack({}, 0); }, {"stack", "at least one"});
  check_error<IndexError>([&] { ops::split(a, {1, 1}, 2); }, {"split", "axis 2", "[2, 3]"});
  check_error<ValueError>([&] { ops::split(a, {1, 1}, 1); }, {"split", "summing to 2", "size 3", "[2, 3]"});
  check_error<ValueError>([&] { ops::split(a, {4, -1}, 1); }, {"split", "negative size -1"});
  check_error<ValueError>([&] { ops::split(a, std::int64_t{2}, 1); }, {"split", "2 equal sections", "[2, 3]"});
  check_error<ValueError>([&] { ops::pad(a, {{1, 1}}); }, {"pad", "1 (before, after) pairs", "[2, 3]"});
  check_error<ValueError>([&] { ops::pad(a, {{0, 0}, {-1, 0}}); }, {"pad", "negative", "axis 1", "[2, 3]"});
  check_error<ShapeError>([&] { ops::broadcast_to(a, {3, 3}); }, {"broadcast_to", "[2, 3]", "[3, 3]"});
  check_error<ShapeError>([&] { ops::broadcast_to(a, {3}); }, {"broadcast_to", "[2, 3]", "[3]"});
  check_error<ValueError>([&] { ops::slice_backward(zeros({3}), {5}, 0, 1, 2); }, {"slice_backward", "[5]"});
  check_error<IndexError>([&] { ops::slice_backward(zeros({3}), {5}, 1, 0, 1); }, {"slice_backward", "axis 1"});
}

TEST_CASE("take, embedding, where, one_hot: indices out of range name the op and the index") {
  const Tensor a = zeros({4, 3});
  const Tensor idx = from_vector<std::int64_t>({0, 5, 1}, {3});
  check_error<IndexError>([&] { ops::take(a, idx, 0); }, {"take", "index 5", "[1]", "axis 0", "size 4", "[4, 3]"});
  check_error<IndexError>([&] { ops::take(a, from_vector<std::int64_t>({-5}), 0); }, {"take", "index -5", "size 4"});
  check_error<IndexError>([&] { ops::take(a, idx, 2); }, {"take", "axis 2", "[4, 3]"});
  check_error<DTypeError>([&] { ops::take(a, zeros({2}), 0); }, {"take", "int64", "float32"});
  check_error<IndexError>([&] { ops::embedding(a, from_vector<std::int64_t>({1, 2, 3, 4}, {2, 2})); },
                          {"embedding", "index 4", "[1, 1]", "size 4"});
  check_error<IndexError>([&] { ops::embedding(a, from_vector<std::int64_t>({-1})); }, {"embedding", "index -1"});
  check_error<ShapeError>([&] { ops::embedding(zeros({4}), idx); }, {"embedding", "2-D", "[4]"});
  check_error<IndexError>([&] { ops::take_backward(zeros({3, 3}), idx, 0, {4, 3}); }, {"take_backward", "index 5"});
  check_error<ShapeError>([&] { ops::take_backward(zeros({2, 3}), idx, 0, {4, 3}); },
                          {"take_backward", "[2, 3]", "[3]", "[4, 3]"});
  check_error<ShapeError>([&] { ops::where(zeros({2}, DType::UInt8), a, a); }, {"where", "[2]", "[4, 3]"});
  check_error<DTypeError>([&] { ops::where(zeros({3}), a, zeros({4, 3}, DType::Float64)); },
                          {"where", "float32", "float64"});
  check_error<IndexError>([&] { ops::one_hot(idx, 4); }, {"one_hot", "index 5", "[1]", "[0, 4)"});
  check_error<DTypeError>([&] { ops::one_hot(zeros({2}), 4); }, {"one_hot", "int64", "float32"});
}

// Fake CUDA tensors over host memory only stop at the switch when there is
// no usable GPU; with one they would reach the kernels (tests/cuda covers that).
TEST_CASE("CUDA tensors stop at the backend switch with a DeviceError" *
          doctest::skip(test::skip_because(cuda::is_available(), "a CUDA device is present (tests/cuda cover it)"))) {
  const Tensor gpu = fake_cuda_tensor({2, 3});
  const Tensor cpu = zeros({2, 3});
  check_error<DeviceError>([&] { ops::add(gpu, gpu); }, {"add", "CUDA backend not available", "[2, 3]"});
  check_error<DeviceError>([&] { ops::add(gpu, cpu); }, {"add", "different devices", "[2, 3]"});
  check_error<DeviceError>([&] { ops::relu(gpu); }, {"relu", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::gelu(gpu); }, {"gelu", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::leaky_relu(gpu); }, {"leaky_relu", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::sum(gpu, {0}); }, {"sum", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::softmax(gpu); }, {"softmax", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::matmul(gpu, fake_cuda_tensor({3, 2})); }, {"matmul", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::matmul(fake_cuda_tensor({4, 2, 3}), fake_cuda_tensor({3, 2})); },
                           {"matmul", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::softmax_cross_entropy(gpu, from_vector<std::int64_t>({0, 1})); },
                           {"softmax_cross_entropy", "cuda"});
  check_error<DeviceError>([&] { ops::concat({gpu, gpu}, 0); }, {"concat", "CUDA backend not available"});
  check_error<DeviceError>([&] { ops::concat({cpu, gpu}, 1); }, {"concat", "different devices", "axis 1", "[2, 3]"});
  // Ops without device kernels say so whatever the build.
  const Tensor ids = from_vector<std::int64_t>({0, 1});
  check_error<DeviceError>([&] { ops::take(gpu, ids, 0); }, {"take", "not implemented on cuda yet", "[2, 3]"});
  check_error<DeviceError>([&] { ops::embedding(gpu, ids); }, {"embedding", "not implemented on cuda yet"});
  check_error<DeviceError>([&] { ops::where(cpu, gpu, gpu); }, {"where", "not implemented on cuda yet"});
}
