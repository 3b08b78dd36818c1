// softmax, log_softmax, their backward passes and the fused softmax
// cross-entropy against double-precision reference loops, under every ISA and
// 1 and 2 threads, including extreme logits.
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

// log_softmax of one row in double (max-shifted).
std::vector<double> reference_log_softmax_row(const double* x, std::int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += std::exp(x[i] - m);
  std::vector<double> out(n);
  for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] - m - std::log(s);
  return out;
}

std::vector<double> reference_log_softmax(const Tensor& a) {
  const std::vector<double> v = a.to_vector<double>();
  const std::int64_t n = a.shape().back();
  std::vector<double> out;
  for (std::size_t r = 0; r < v.size(); r += n) {
    const std::vector<double> row = reference_log_softmax_row(v.data() + r, n);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

std::vector<double> exp_all(std::vector<double> v) {
  for (double& x : v) x = std::exp(x);
  return v;
}

const std::vector<Shape>& row_shapes() {
  static const std::vector<Shape> shapes = {{1},     {1, 1},   {3, 7},    {4, 8},    {2, 16},  {5, 17},
                                            {2, 3, 33}, {1, 1000}, {97, 5}, {700, 104}, {2, 1001}};
  return shapes;
}

}  // namespace

TEST_CASE("softmax and log_softmax over the last axis") {
  Generator gen(31);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const double rtol = dtype == DType::Float32 ? 1e-5 : 1e-12;
    for (const Shape& shape : row_shapes()) {
      const Tensor a = random_tensor(shape, gen, dtype, -5.0, 5.0);
      const std::vector<double> log_ref = reference_log_softmax(a);
      const std::vector<double> ref = exp_all(log_ref);
      INFO(shape_str(shape), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        const Tensor y = ops::softmax(a);
        CHECK(y.shape() == shape);
        check_close(y, ref, rtol, 1e-7);
        check_close(ops::log_softmax(a), log_ref, rtol, 1e-6);
      });
    }
  }
  // A transposed input is read through its strides.
  const Tensor t = random_tensor({9, 6}, gen).transpose(0, 1);
  for_each_isa_and_threads([&] { check_close(ops::softmax(t), exp_all(reference_log_softmax(t)), 1e-5, 1e-7); });
}

TEST_CASE("softmax is stable for logits like +-1000") {
  const Tensor a = from_vector<float>({1000, -1000, 999, 0, 1000, 1000, -1000, -1000}, {2, 4});
  const std::vector<double> expected_log = reference_log_softmax(a);
  for_each_isa_and_threads([&] {
    const std::vector<float> y = ops::softmax(a).to_vector<float>();
    for (float v : y) CHECK(std::isfinite(v));
    check_close(ops::softmax(a), exp_all(expected_log), 1e-5, 1e-7);
    const std::vector<float> log_y = ops::log_softmax(a).to_vector<float>();
    for (float v : log_y) CHECK(std::isfinite(v));
    check_close(ops::log_softmax(a), expected_log, 1e-5, 1e-4);
  });
}

TEST_CASE("softmax_backward and log_softmax_backward") {
  Generator gen(32);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const double rtol = dtype == DType::Float32 ? 1e-4 : 1e-11;
    for (const Shape& shape : row_shapes()) {
      const Tensor x = random_tensor(shape, gen, dtype, -3.0, 3.0);
      const Tensor g = random_tensor(shape, gen, dtype);
      const Tensor y = ops::softmax(x), log_y = ops::log_softmax(x);
      const std::vector<double> vy = y.to_vector<double>(), vl = log_y.to_vector<double>(), vg = g.to_vector<double>();
      const std::int64_t n = shape.back();
      std::vector<double> expected_soft(vy.size()), expected_log(vy.size());
      for (std::size_t r = 0; r < vy.size(); r += n) {
        double dot = 0, sum_g = 0;
        for (std::int64_t i = 0; i < n; ++i) {
          dot += vg[r + i] * vy[r + i];
          sum_g += vg[r + i];
        }
        for (std::int64_t i = 0; i < n; ++i) {
          expected_soft[r + i] = vy[r + i] * (vg[r + i] - dot);
          expected_log[r + i] = vg[r + i] - std::exp(vl[r + i]) * sum_g;
        }
      }
      INFO(shape_str(shape), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        check_close(ops::softmax_backward(g, y), expected_soft, rtol, 1e-6);
        check_close(ops::log_softmax_backward(g, log_y), expected_log, rtol, 1e-5);
      });
    }
  }
}

namespace {

struct CrossEntropyReference {
  std::vector<double> loss, grad;  // grad for grad_loss = g
};

CrossEntropyReference reference_cross_entropy(const Tensor& logits, const std::vector<double>& target_probs,
                                              const std::vector<double>& grad_loss) {
  const std::int64_t n = logits.shape()[0], c = logits.shape()[1];
  const std::vector<double> x = logits.to_vector<double>();
  CrossEntropyReference ref;
  for (std::int64_t r = 0; r < n; ++r) {
    const std::vector<double> log_p = reference_log_softmax_row(x.data() + r * c, c);
    double loss = 0;
    for (std::int64_t i = 0; i < c; ++i) loss -= target_probs[r * c + i] * log_p[i];
    ref.loss.push_back(loss);
    for (std::int64_t i = 0; i < c; ++i) ref.grad.push_back(grad_loss[r] * (std::exp(log_p[i]) - target_probs[r * c + i]));
  }
  return ref;
}

}  // namespace

TEST_CASE("softmax_cross_entropy with probability and class-index targets, and its backward") {
  Generator gen(33);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const double rtol = dtype == DType::Float32 ? 1e-5 : 1e-12;
    for (const Shape& shape : {Shape{1, 1}, Shape{1, 5}, Shape{3, 7}, Shape{4, 16}, Shape{6, 17}, Shape{130, 5},
                               Shape{131, 1000}, Shape{2, 1001}}) {
      const std::int64_t n = shape[0], c = shape[1];
      const Tensor logits = random_tensor(shape, gen, dtype, -4.0, 4.0);
      std::vector<std::int64_t> labels(n);
      for (auto& l : labels) l = static_cast<std::int64_t>(gen.uniform_int(static_cast<std::uint64_t>(c)));
      std::vector<double> onehot(n * c, 0.0);
      for (std::int64_t r = 0; r < n; ++r) onehot[r * c + labels[r]] = 1.0;
      // Soft targets: rows of a softmax (sum to 1, all non-zero).
      const Tensor soft = ops::softmax(random_tensor(shape, gen, dtype));
      const std::vector<double> soft_values = soft.to_vector<double>();
      const Tensor grad_loss = random_tensor({n}, gen, dtype);
      const std::vector<double> g = grad_loss.to_vector<double>();
      const Tensor label_tensor = from_vector<std::int64_t>(labels);
      const Tensor onehot_tensor = from_vector<double>(onehot, shape).to(dtype);
      const CrossEntropyReference hard = reference_cross_entropy(logits, onehot, g);
      const CrossEntropyReference soft_ref = reference_cross_entropy(logits, soft_values, g);
      const std::vector<double> probs_ref = exp_all(reference_log_softmax(logits));
      INFO(shape_str(shape), " ", std::string(dtype_name(dtype)));
      for_each_isa_and_threads([&] {
        Tensor probs;
        const Tensor loss_idx = ops::softmax_cross_entropy(logits, label_tensor, &probs);
        CHECK(loss_idx.shape() == Shape{n});
        check_close(loss_idx, hard.loss, rtol, 1e-6);
        REQUIRE(probs.defined());
        check_close(probs, probs_ref, rtol, 1e-7);
        check_close(ops::softmax_cross_entropy_backward(grad_loss, probs, label_tensor), hard.grad, rtol, 1e-6);

        const Tensor loss_onehot = ops::softmax_cross_entropy(logits, onehot_tensor);
        check_close(loss_onehot, hard.loss, rtol, 1e-6);
        check_close(ops::softmax_cross_entropy_backward(grad_loss, probs, onehot_tensor), hard.grad, rtol, 1e-6);

        const Tensor loss_soft = ops::softmax_cross_entropy(logits, soft);
        check_close(loss_soft, soft_ref.loss, rtol, 1e-6);
        check_close(ops::softmax_cross_entropy_backward(grad_loss, probs, soft), soft_ref.grad, rtol, 1e-6);
      });
    }
  }
}

TEST_CASE("softmax_cross_entropy is stable for logits like +-1000") {
  const Tensor logits = from_vector<float>({1000, -1000, 0, -1000, 1000, 999, 1000, 1000, 1000}, {3, 3});
  const Tensor labels = from_vector<std::int64_t>({0, 0, 2});
  // Row 0: the right class dominates, loss ~ 0. Row 1: the right class is
  // 2000 below the best, loss = 2000 + log(1 + e^-1). Row 2: uniform, log 3.
  const std::vector<double> expected = {0.0, 2000.0 + std::log1p(std::exp(-1.0)), std::log(3.0)};
  for_each_isa_and_threads([&] {
    Tensor probs;
    const Tensor loss = ops::softmax_cross_entropy(logits, labels, &probs);
    check_close(loss, expected, 1e-6, 1e-6);
    for (float p : probs.to_vector<float>()) CHECK(std::isfinite(p));
    const Tensor onehot = from_vector<float>({1, 0, 0, 1, 0, 0, 0, 0, 1}, {3, 3});
    check_close(ops::softmax_cross_entropy(logits, onehot), expected, 1e-6, 1e-6);
    const Tensor grad = ops::softmax_cross_entropy_backward(ones({3}), probs, labels);
    for (float v : grad.to_vector<float>()) CHECK(std::isfinite(v));
  });
}

TEST_CASE("softmax_cross_entropy reads strided logits and returns no probs unless asked") {
  Generator gen(34);
  const Tensor logits = random_tensor({7, 5}, gen).transpose(0, 1);  // [5, 7], column-major
  const Tensor labels = from_vector<std::int64_t>({0, 6, 3, 3, 1});
  std::vector<double> onehot(35, 0.0);
  const std::vector<std::int64_t> l = labels.to_vector<std::int64_t>();
  for (int r = 0; r < 5; ++r) onehot[r * 7 + l[r]] = 1.0;
  const CrossEntropyReference ref = reference_cross_entropy(logits, onehot, std::vector<double>(5, 1.0));
  check_close(ops::softmax_cross_entropy(logits, labels), ref.loss, 1e-5, 1e-6);
}
