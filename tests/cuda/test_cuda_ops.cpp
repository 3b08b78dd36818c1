// Every CUDA op against the CPU op on random shapes: broadcasting, strided
// views, batch 1, odd sizes; float32 and float64.
#include <doctest/doctest.h>

#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/cuda_test_support.hpp"

using namespace petal;
using petal::test::kCuda;

#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_runtime_api.hpp"

namespace {

using test::check_matches;
using test::random_shape;
using test::random_tensor;

const DType kDtypes[] = {DType::Float32, DType::Float64};

// The same random operand on both devices, contiguous or a strided view.
struct Pair {
  Tensor cpu, cuda;
};
Pair operand(const Shape& shape, Generator& gen, DType dtype, bool strided, double low = -2.0, double high = 2.0) {
  if (strided && shape.size() > 1) {
    const test::StridedPair p = test::strided_pair(shape, gen, dtype);
    if (low >= 0) return {ops::add_scalar(ops::abs(p.cpu), low + 0.01), ops::add_scalar(ops::abs(p.cuda), low + 0.01)};
    return {p.cpu, p.cuda};
  }
  const Tensor t = random_tensor(shape, gen, dtype, low, high);
  return {t, t.to(kCuda)};
}

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;
using UnaryFn = std::function<Tensor(const Tensor&)>;

}  // namespace

TEST_CASE("binary ops with broadcasting and strided operands match the CPU") {
  const std::vector<std::pair<const char*, BinaryFn>> table = {
      {"add", ops::add}, {"sub", ops::sub}, {"mul", ops::mul}, {"div", ops::div},
      {"maximum", ops::maximum}, {"minimum", ops::minimum}};
  Generator gen(31);
  for (DType dtype : kDtypes) {
    for (int trial = 0; trial < 24; ++trial) {
      const Shape shape = random_shape(gen, 1 + trial % 6);
      const Pair a = operand(shape, gen, dtype, trial % 2 == 0);
      const Pair b = operand(test::broadcastable_to(shape, gen), gen, dtype, trial % 3 == 0, 0.5, 2.0);
      for (const auto& [name, fn] : table) {
        INFO(name, " ", shape_str(a.cpu.shape()), " and ", shape_str(b.cpu.shape()), " ", dtype_name(dtype));
        check_matches(fn(a.cuda, b.cuda), fn(a.cpu, b.cpu), test::rtol_for(dtype), test::atol_for(dtype));
        // Broadcasting the other way round too.
        check_matches(fn(b.cuda, a.cuda), fn(b.cpu, a.cpu), test::rtol_for(dtype), test::atol_for(dtype));
      }
    }
  }
}

TEST_CASE("activation backward helpers match the CPU") {
  const std::vector<std::pair<const char*, BinaryFn>> table = {{"relu_backward", ops::relu_backward},
                                                               {"relu6_backward", ops::relu6_backward},
                                                               {"sigmoid_backward", ops::sigmoid_backward},
                                                               {"tanh_backward", ops::tanh_backward}};
  Generator gen(32);
  for (DType dtype : kDtypes) {
    for (const Shape& shape : {Shape{1}, Shape{7, 3}, Shape{1, 5, 5, 33}, Shape{64, 1280}}) {
      const Pair g = operand(shape, gen, dtype, shape.size() > 1);
      const Pair x = operand(shape, gen, dtype, false, -1.0, 7.0);
      for (const auto& [name, fn] : table) {
        INFO(name, " ", shape_str(shape));
        check_matches(fn(g.cuda, x.cuda), fn(g.cpu, x.cpu), test::rtol_for(dtype), test::atol_for(dtype));
      }
    }
  }
}

TEST_CASE("unary and scalar ops match the CPU") {
  const std::vector<std::pair<const char*, UnaryFn>> any_sign = {
      {"neg", ops::neg}, {"exp", ops::exp}, {"abs", ops::abs}, {"relu", ops::relu}, {"relu6", ops::relu6},
      {"sigmoid", ops::sigmoid}, {"tanh", ops::tanh},
      {"add_scalar", [](const Tensor& t) { return ops::add_scalar(t, -0.75); }},
      {"mul_scalar", [](const Tensor& t) { return ops::mul_scalar(t, 3.5); }},
      {"pow_scalar 2", [](const Tensor& t) { return ops::pow_scalar(t, 2.0); }},
      {"pow_scalar 3", [](const Tensor& t) { return ops::pow_scalar(t, 3.0); }},
      {"clamp", [](const Tensor& t) { return ops::clamp(t, -0.5, 1.25); }}};
  const std::vector<std::pair<const char*, UnaryFn>> positive = {
      {"log", ops::log}, {"sqrt", ops::sqrt},
      {"pow_scalar 0.5", [](const Tensor& t) { return ops::pow_scalar(t, 0.5); }},
      {"pow_scalar -1", [](const Tensor& t) { return ops::pow_scalar(t, -1.0); }},
      {"pow_scalar 1.7", [](const Tensor& t) { return ops::pow_scalar(t, 1.7); }}};
  Generator gen(33);
  for (DType dtype : kDtypes) {
    // float32 exp/log/tanh: the CPU's vector approximations vs CUDA's libm.
    const double rtol = dtype == DType::Float32 ? 1e-5 : 1e-12, atol = dtype == DType::Float32 ? 1e-6 : 1e-12;
    for (int trial = 0; trial < 12; ++trial) {
      const Shape shape = random_shape(gen, 1 + trial % 5, 11);
      const Pair a = operand(shape, gen, dtype, trial % 2 == 1, -6.0, 6.0);
      const Pair p = operand(shape, gen, dtype, trial % 3 == 1, 0.01, 6.0);
      for (const auto& [name, fn] : any_sign) {
        INFO(name, " ", shape_str(shape));
        check_matches(fn(a.cuda), fn(a.cpu), rtol, atol);
      }
      for (const auto& [name, fn] : positive) {
        INFO(name, " ", shape_str(shape));
        check_matches(fn(p.cuda), fn(p.cpu), rtol, atol);
      }
    }
  }
}

TEST_CASE("in-place add_, mul_scalar_ and clamp_ match the CPU, strided targets included") {
  Generator gen(34);
  for (DType dtype : kDtypes) {
    for (int trial = 0; trial < 10; ++trial) {
      const Shape shape = random_shape(gen, 1 + trial % 4);
      const bool strided = trial % 2 == 0;
      Pair a = operand(shape, gen, dtype, strided);
      const Pair b = operand(test::broadcastable_to(shape, gen), gen, dtype, false);
      ops::add_(a.cpu, b.cpu, -0.5);
      ops::add_(a.cuda, b.cuda, -0.5);
      check_matches(a.cuda, a.cpu, test::rtol_for(dtype), test::atol_for(dtype));
      ops::mul_scalar_(a.cpu, 1.5);
      ops::mul_scalar_(a.cuda, 1.5);
      check_matches(a.cuda, a.cpu, test::rtol_for(dtype), test::atol_for(dtype));
      ops::clamp_(a.cpu, -0.3, 0.4);
      ops::clamp_(a.cuda, -0.3, 0.4);
      check_matches(a.cuda, a.cpu, 0.0, 0.0);
    }
  }
}

TEST_CASE("a tensor larger than one grid is covered by the grid-stride loops") {
  const std::int64_t n = (std::int64_t{65535} * 256) + 12345;  // more than the capped grid
  Generator gen(35);
  const Tensor a = random_tensor({n}, gen);
  const Tensor b = random_tensor({n}, gen);
  check_matches(ops::add(a.to(kCuda), b.to(kCuda)), ops::add(a, b), 0.0, 0.0);
  check_matches(ops::sum(a.to(kCuda)), ops::sum(a), 1e-4, 1e-3);
}

TEST_CASE("sum, mean and max over random axes match the CPU") {
  Generator gen(36);
  for (DType dtype : kDtypes) {
    for (int trial = 0; trial < 30; ++trial) {
      const int rank = 1 + trial % 5;
      const Shape shape = random_shape(gen, rank, rank <= 3 && trial % 7 == 0 ? 70 : 9);  // some long axes
      const Pair a = operand(shape, gen, dtype, trial % 2 == 1);
      ops::Axes axes;
      for (int d = 0; d < rank; ++d)
        if (gen.next_u64() % 2) axes.push_back(gen.next_u64() % 2 ? d : d - rank);
      const bool keepdim = trial % 3 == 0;
      INFO(shape_str(shape), " axes ", axes.size(), " keepdim ", keepdim, " ", dtype_name(dtype));
      // The CPU sums float32 in float (the GPU in double): allow its rounding.
      const double rtol = dtype == DType::Float32 ? 1e-4 : 1e-12, atol = dtype == DType::Float32 ? 1e-3 : 1e-12;
      check_matches(ops::sum(a.cuda, axes, keepdim), ops::sum(a.cpu, axes, keepdim), rtol, atol);
      check_matches(ops::mean(a.cuda, axes, keepdim), ops::mean(a.cpu, axes, keepdim), rtol, atol);
      check_matches(ops::max(a.cuda, axes, keepdim), ops::max(a.cpu, axes, keepdim), 0.0, 0.0);
    }
    // Few outputs of many elements (the split scheme) and everything at once.
    for (const auto& [shape, axes] : std::vector<std::pair<Shape, ops::Axes>>{
             {{3, 100000}, {1}}, {{300001}, {}}, {{5, 40000, 3}, {1}}, {{64, 7, 7, 8}, {}}}) {
      const Pair a = operand(shape, gen, dtype, false);
      const double rtol = dtype == DType::Float32 ? 1e-4 : 1e-12, atol = dtype == DType::Float32 ? 1e-2 : 1e-9;
      INFO(shape_str(shape));
      check_matches(ops::sum(a.cuda, axes), ops::sum(a.cpu, axes), rtol, atol);
      check_matches(ops::max(a.cuda, axes), ops::max(a.cpu, axes), 0.0, 0.0);
    }
    // The shapes of training: bias gradients of NHWC activations, batch 1.
    for (const Shape& shape : {Shape{64, 7, 7, 1280}, Shape{1, 96, 96, 32}, Shape{256, 5}}) {
      const Pair a = operand(shape, gen, dtype, false);
      ops::Axes lead;
      for (std::size_t d = 0; d + 1 < shape.size(); ++d) lead.push_back(static_cast<std::int64_t>(d));
      const double rtol = dtype == DType::Float32 ? 1e-4 : 1e-12, atol = dtype == DType::Float32 ? 3e-3 : 1e-10;
      check_matches(ops::sum(a.cuda, lead), ops::sum(a.cpu, lead), rtol, atol);
      check_matches(ops::sum_to(a.cuda, {shape.back()}), ops::sum_to(a.cpu, {shape.back()}), rtol, atol);
      if (shape.size() == 4) check_matches(ops::mean(a.cuda, {1, 2}), ops::mean(a.cpu, {1, 2}), rtol, atol);
    }
  }
}

TEST_CASE("max and argmax skip NaN; argmax and sum_to match the CPU") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor t = from_vector<float>({nan, 1, 5, 5, 2, nan, -1, -2, nan, nan, nan, nan}, {3, 4});
  check_matches(ops::max(t.to(kCuda), {1}), ops::max(t, {1}), 0.0, 0.0);
  CHECK(ops::argmax(t.to(kCuda), 1).to_vector<std::int64_t>() == ops::argmax(t, 1).to_vector<std::int64_t>());
  Generator gen(37);
  for (DType dtype : kDtypes) {
    for (int trial = 0; trial < 12; ++trial) {
      const int rank = 1 + trial % 4;
      const Shape shape = random_shape(gen, rank);
      const Pair a = operand(shape, gen, dtype, trial % 2 == 0);
      const std::int64_t axis = static_cast<std::int64_t>(gen.next_u64() % rank);
      const Tensor got = ops::argmax(a.cuda, axis);
      CHECK(got.dtype() == DType::Int64);
      CHECK(got.to_vector<std::int64_t>() == ops::argmax(a.cpu, axis).to_vector<std::int64_t>());
      const Shape target = test::broadcastable_to(shape, gen);
      check_matches(ops::sum_to(a.cuda, target), ops::sum_to(a.cpu, target), test::rtol_for(dtype) * 10,
                    test::atol_for(dtype) * 10);
    }
  }
}

TEST_CASE("softmax, log_softmax and their backward passes match the CPU") {
  Generator gen(38);
  for (DType dtype : kDtypes) {
    for (const Shape& shape : {Shape{1, 1}, Shape{1, 5}, Shape{3, 17}, Shape{2, 3, 64}, Shape{64, 104},
                               Shape{5, 4097}, Shape{9}}) {
      const Pair x = operand(shape, gen, dtype, shape.size() > 1 && shape[0] > 1, -8.0, 8.0);
      const Pair g = operand(shape, gen, dtype, false);
      const double rtol = dtype == DType::Float32 ? 2e-5 : 1e-12, atol = dtype == DType::Float32 ? 1e-6 : 1e-13;
      INFO(shape_str(shape), " ", dtype_name(dtype));
      const Tensor y_cpu = ops::softmax(x.cpu), y_cuda = ops::softmax(x.cuda);
      check_matches(y_cuda, y_cpu, rtol, atol);
      const Tensor ly_cpu = ops::log_softmax(x.cpu), ly_cuda = ops::log_softmax(x.cuda);
      check_matches(ly_cuda, ly_cpu, rtol, atol);
      check_matches(ops::softmax_backward(g.cuda, y_cuda), ops::softmax_backward(g.cpu, y_cpu), rtol, atol);
      check_matches(ops::log_softmax_backward(g.cuda, ly_cuda), ops::log_softmax_backward(g.cpu, ly_cpu), rtol, atol);
    }
  }
}

TEST_CASE("softmax cross-entropy with labels and probabilities matches the CPU, forward and backward") {
  Generator gen(39);
  for (DType dtype : kDtypes) {
    for (const Shape& shape : {Shape{1, 5}, Shape{32, 5}, Shape{256, 1000}, Shape{7, 1}}) {
      const std::int64_t n = shape[0], c = shape[1];
      const Pair logits = operand(shape, gen, dtype, false, -6.0, 6.0);
      std::vector<std::int64_t> labels(n);
      for (auto& l : labels) l = static_cast<std::int64_t>(gen.next_u64() % c);
      const Tensor labels_cpu = from_vector<std::int64_t>(labels);
      const Tensor probs_target = ops::softmax(random_tensor(shape, gen, dtype));
      const Pair grad = operand({n}, gen, dtype, false);
      const double rtol = dtype == DType::Float32 ? 2e-5 : 1e-12, atol = dtype == DType::Float32 ? 2e-6 : 1e-13;
      INFO(shape_str(shape), " ", dtype_name(dtype));
      Tensor p_cpu, p_cuda;
      check_matches(ops::softmax_cross_entropy(logits.cuda, labels_cpu.to(kCuda), &p_cuda),
                    ops::softmax_cross_entropy(logits.cpu, labels_cpu, &p_cpu), rtol, atol);
      check_matches(p_cuda, p_cpu, rtol, atol);
      check_matches(ops::softmax_cross_entropy(logits.cuda, probs_target.to(kCuda)),
                    ops::softmax_cross_entropy(logits.cpu, probs_target), rtol, atol);
      check_matches(ops::softmax_cross_entropy_backward(grad.cuda, p_cuda, labels_cpu.to(kCuda)),
                    ops::softmax_cross_entropy_backward(grad.cpu, p_cpu, labels_cpu), rtol, atol);
      check_matches(ops::softmax_cross_entropy_backward(grad.cuda, p_cuda, probs_target.to(kCuda)),
                    ops::softmax_cross_entropy_backward(grad.cpu, p_cpu, probs_target), rtol, atol);
    }
  }
}

TEST_CASE("a class label out of range is an IndexError naming the row, found on the device") {
  const Tensor logits = ones({4, 3}, DType::Float32, kCuda);
  for (std::int64_t bad : {std::int64_t{3}, std::int64_t{-1}}) {
    const Tensor labels = from_vector<std::int64_t>({0, 2, bad, 1}).to(kCuda);
    try {
      ops::softmax_cross_entropy(logits, labels);
      FAIL("no error for label ", bad);
    } catch (const IndexError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("softmax_cross_entropy") != std::string::npos);
      CHECK(msg.find("row 2") != std::string::npos);
      CHECK(msg.find(std::to_string(bad)) != std::string::npos);
    }
    CHECK_THROWS_AS(ops::softmax_cross_entropy_backward(ones({4}, DType::Float32, kCuda), logits, labels), IndexError);
  }
  // The device is fine afterwards.
  CHECK(ops::sum(logits).item<float>() == 12.0f);
}

TEST_CASE("matmul through cuBLAS matches the CPU: transposes, batches, strided operands") {
  Generator gen(40);
  for (DType dtype : kDtypes) {
    const double rtol = dtype == DType::Float32 ? 1e-4 : 1e-11, atol = dtype == DType::Float32 ? 1e-4 : 1e-11;
    for (const auto& [m, k, n] : std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>>{
             {1, 1, 1}, {3, 5, 7}, {64, 1280, 5}, {1, 1280, 104}, {33, 65, 17}}) {
      for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
          INFO("m ", m, " k ", k, " n ", n, " ta ", ta, " tb ", tb, " ", dtype_name(dtype));
          const Pair a = operand(ta ? Shape{k, m} : Shape{m, k}, gen, dtype, (m + k) % 2 == 0);
          const Pair b = operand(tb ? Shape{n, k} : Shape{k, n}, gen, dtype, false);
          check_matches(ops::matmul(a.cuda, b.cuda, ta, tb), ops::matmul(a.cpu, b.cpu, ta, tb), rtol, atol);
        }
      }
    }
    // Batched [B, M, K] @ [B, K, N], including batch 1 and a transposed batch.
    for (std::int64_t batch : {1, 4}) {
      const Pair a = operand({batch, 6, 9}, gen, dtype, false);
      const Pair b = operand({batch, 9, 5}, gen, dtype, true);
      check_matches(ops::matmul(a.cuda, b.cuda), ops::matmul(a.cpu, b.cpu), rtol, atol);
      check_matches(ops::matmul(b.cuda, a.cuda, true, true), ops::matmul(b.cpu, a.cpu, true, true), rtol, atol);
    }
    // K = 0 gives zeros.
    const Tensor z = ops::matmul(zeros({3, 0}, dtype, kCuda), zeros({0, 4}, dtype, kCuda));
    CHECK(z.to_vector<double>() == std::vector<double>(12, 0.0));
  }
}

TEST_CASE("TF32 matmul stays close to the FP32 result") {
  Generator gen(41);
  const Tensor a = random_tensor({128, 256}, gen), b = random_tensor({256, 64}, gen);
  const Tensor want = ops::matmul(a, b);
  cuda::set_tf32_enabled(true);
  const Tensor got = ops::matmul(a.to(kCuda), b.to(kCuda));
  cuda::set_tf32_enabled(false);
  check_matches(got, want, 1e-2, 5e-2);  // TF32 keeps 10 mantissa bits
}

TEST_CASE("fused optimizer updates match the CPU ops") {
  Generator gen(42);
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{1000}, std::int64_t{3000017}}) {
    const Tensor w0 = random_tensor({n}, gen);
    for (const auto& [momentum, nesterov, decay] :
         std::vector<std::tuple<double, bool, double>>{{0.0, false, 0.0}, {0.9, false, 0.0}, {0.9, true, 1e-3}}) {
      Tensor w_cpu = w0.clone(), w_cuda = w0.to(kCuda);
      Tensor m_cpu = momentum != 0.0 ? zeros({n}) : Tensor();
      Tensor m_cuda = momentum != 0.0 ? zeros({n}, DType::Float32, kCuda) : Tensor();
      for (int step = 0; step < 3; ++step) {
        const Tensor g = random_tensor({n}, gen);
        ops::sgd_update_(w_cpu, g, m_cpu, 0.01, momentum, nesterov, decay);
        ops::sgd_update_(w_cuda, g.to(kCuda), m_cuda, 0.01, momentum, nesterov, decay);
      }
      check_matches(w_cuda, w_cpu, 1e-6, 1e-6);
      if (momentum != 0.0) check_matches(m_cuda, m_cpu, 1e-6, 1e-6);
    }
    Tensor w_cpu = w0.clone(), w_cuda = w0.to(kCuda);
    Tensor m_cpu = zeros({n}), v_cpu = zeros({n});
    Tensor m_cuda = zeros({n}, DType::Float32, kCuda), v_cuda = zeros({n}, DType::Float32, kCuda);
    for (std::int64_t step = 1; step <= 3; ++step) {
      const Tensor g = random_tensor({n}, gen);
      ops::adam_update_(w_cpu, g, m_cpu, v_cpu, 1e-3, 0.9, 0.999, 1e-7, step, 1e-2);
      ops::adam_update_(w_cuda, g.to(kCuda), m_cuda, v_cuda, 1e-3, 0.9, 0.999, 1e-7, step, 1e-2);
    }
    check_matches(w_cuda, w_cpu, 1e-5, 1e-6);
    check_matches(m_cuda, m_cpu, 1e-5, 1e-6);
    check_matches(v_cuda, v_cpu, 1e-5, 1e-7);
    const Tensor g = random_tensor({n}, gen);
    CHECK(ops::squared_norm(g.to(kCuda)) == doctest::Approx(ops::squared_norm(g)).epsilon(1e-10));
  }
}

TEST_CASE("fused RMSprop and Adagrad updates match the CPU ops") {
  Generator gen(43);
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{1001}, std::int64_t{3000017}}) {
    const Tensor w0 = random_tensor({n}, gen);
    for (const auto& [momentum, centered, decay] :
         std::vector<std::tuple<double, bool, double>>{{0.0, false, 0.0}, {0.9, false, 0.0}, {0.0, true, 0.0},
                                                       {0.5, true, 4e-3}}) {
      INFO("n " << n << " momentum " << momentum << " centered " << centered << " decay " << decay);
      Tensor w_cpu = w0.clone(), w_cuda = w0.to(kCuda);
      Tensor v_cpu = zeros({n}), v_cuda = zeros({n}, DType::Float32, kCuda);
      Tensor m_cpu = momentum != 0.0 ? zeros({n}) : Tensor();
      Tensor m_cuda = momentum != 0.0 ? zeros({n}, DType::Float32, kCuda) : Tensor();
      Tensor a_cpu = centered ? zeros({n}) : Tensor();
      Tensor a_cuda = centered ? zeros({n}, DType::Float32, kCuda) : Tensor();
      for (int step = 0; step < 3; ++step) {
        const Tensor g = random_tensor({n}, gen);
        ops::rmsprop_update_(w_cpu, g, v_cpu, m_cpu, a_cpu, 1e-3, 0.9, momentum, 1e-7, centered, decay);
        ops::rmsprop_update_(w_cuda, g.to(kCuda), v_cuda, m_cuda, a_cuda, 1e-3, 0.9, momentum, 1e-7, centered,
                             decay);
      }
      check_matches(w_cuda, w_cpu, 1e-5, 1e-6);
      check_matches(v_cuda, v_cpu, 1e-5, 1e-7);
      if (momentum != 0.0) check_matches(m_cuda, m_cpu, 1e-5, 1e-7);
      if (centered) check_matches(a_cuda, a_cpu, 1e-5, 1e-7);
    }
    Tensor w_cpu = w0.clone(), w_cuda = w0.to(kCuda);
    Tensor acc_cpu = full({n}, 0.1), acc_cuda = full({n}, 0.1, DType::Float32, kCuda);
    for (int step = 0; step < 3; ++step) {
      const Tensor g = random_tensor({n}, gen);
      ops::adagrad_update_(w_cpu, g, acc_cpu, 1e-2, 1e-7, 1e-2);
      ops::adagrad_update_(w_cuda, g.to(kCuda), acc_cuda, 1e-2, 1e-7, 1e-2);
    }
    check_matches(w_cuda, w_cpu, 1e-5, 1e-6);
    check_matches(acc_cuda, acc_cpu, 1e-5, 1e-6);
  }
}

TEST_CASE("ops keep results on the operands' device and check devices first") {
  const Tensor a = ones({2, 3}, DType::Float32, kCuda);
  CHECK(ops::relu(a).device() == kCuda);
  CHECK(ops::sum(a, {0}).device() == kCuda);
  CHECK(ops::argmax(a, 1).device() == kCuda);
  CHECK(ops::matmul(a, a, false, true).device() == kCuda);
  CHECK_THROWS_AS(ops::add(a, ones({2, 3})), DeviceError);
  CHECK_THROWS_AS(ops::softmax_cross_entropy(a, from_vector<std::int64_t>({0, 1})), DeviceError);
  CHECK_THROWS_AS(ops::add(a, ones({2, 3}, DType::Float32, Device::cuda(cuda::device_count()))), DeviceError);
}
