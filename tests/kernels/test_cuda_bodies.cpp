// The per-element logic of the CUDA kernels, run on the CPU: the index math
// (strided_index.hpp, the reduction plan) and the formulas of
// kernels/portable/ (elementwise_ops.hpp, reduce_ops.hpp, softmax_ops.hpp),
// composed the way the kernels compose them, against the CPU ops on random shapes,
// broadcasts and strided views. This is what can be checked of the CUDA
// kernels on a machine without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/allocator.hpp"
#include "core/tensor.hpp"
#include "kernels/cuda/reduce_body.hpp"
#include "kernels/cuda/strided_index.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"
#include "kernels/portable/dispatch.hpp"
#include "kernels/portable/elementwise_ops.hpp"
#include "kernels/portable/reduce_ops.hpp"
#include "kernels/portable/softmax_ops.hpp"
#include "tests/kernels/ops_test_support.hpp"

using namespace petal;
using kernels::BinaryOp;
using kernels::ReduceOp;
using kernels::UnaryOp;

namespace {

Shape random_shape(Generator& gen, int rank, std::int64_t max_size = 6) {
  Shape shape(rank);
  for (auto& s : shape) s = 1 + static_cast<std::int64_t>(gen.next_u64() % max_size);
  return shape;
}

// An operand that broadcasts to `shape`: leading axes dropped, some set to 1.
Shape broadcastable_to(const Shape& shape, Generator& gen) {
  Shape out;
  for (std::size_t d = gen.next_u64() % (shape.size() + 1); d < shape.size(); ++d)
    out.push_back(gen.next_u64() % 3 == 0 ? 1 : shape[d]);
  return out;
}

// A view of `shape` with the given values layout: contiguous, or the
// reversed-axes transpose of a contiguous tensor (every stride unusual).
Tensor maybe_strided(const Shape& shape, Generator& gen, DType dtype, bool strided, double low = -2.0,
                     double high = 2.0) {
  if (!strided) return test::random_tensor(shape, gen, dtype, low, high);
  const Shape reversed(shape.rbegin(), shape.rend());
  std::vector<std::int64_t> order(shape.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(order.size() - 1 - i);
  return test::random_tensor(reversed, gen, dtype, low, high).permute(order);
}

// The map2 kernel's loop on the host: out (contiguous) = f(a, b) over the
// broadcast shape.
template <class T, class F>
Tensor host_map2(const Tensor& a, const Tensor& b, F f) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "host_map2");
  Tensor out = Tensor::empty(shape, a.dtype());
  const Strides strides[3] = {out.strides(), kernels::broadcast_strides(a.shape(), a.strides(), shape),
                              kernels::broadcast_strides(b.shape(), b.strides(), shape)};
  auto ix = cuda::make_indexer<3>("host_map2", shape, strides);
  ix.index32 = a.numel() % 2 == 0;  // both division paths
  T* po = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    std::int64_t off[3];
    ix.offsets(i, off);
    po[off[0]] = f(pa[off[1]], pb[off[2]]);
  }
  return out;
}

template <class T, class F>
Tensor host_map1(const Tensor& a, F f) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  const Strides strides[2] = {out.strides(), a.strides()};
  const auto ix = cuda::make_indexer<2>("host_map1", a.shape(), strides);
  T* po = out.data<T>();
  const T* pa = a.data<T>();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    std::int64_t off[2];
    ix.offsets(i, off);
    po[off[0]] = f(pa[off[1]]);
  }
  return out;
}

// The CUDA kernels' functors for a run-time op, over the host loops above.
Tensor host_binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  return kernels::visit_op(op, [&](auto kind) {
    return kernels::dispatch_floating(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      return host_map2<T>(a, b, [](T x, T y) { return kernels::binary_value<decltype(kind)::value>(x, y); });
    });
  });
}

Tensor host_unary(UnaryOp op, const Tensor& a) {
  return kernels::visit_op(op, [&](auto kind) {
    return kernels::dispatch_floating(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      return host_map1<T>(a, [](T x) { return kernels::unary_value<decltype(kind)::value>(x); });
    });
  });
}

// The axes flagged in `reduced`, as ops::sum and ops::max take them.
ops::Axes axes_of(const std::vector<bool>& reduced) {
  ops::Axes axes;
  for (std::size_t d = 0; d < reduced.size(); ++d)
    if (reduced[d]) axes.push_back(static_cast<std::int64_t>(d));
  return axes;
}

void check_same(const Tensor& got, const Tensor& want, double rtol, double atol) {
  REQUIRE(got.shape() == want.shape());
  test::check_close(got, want.to_vector<double>(), rtol, atol);
}

double rtol_for(DType dtype) { return dtype == DType::Float32 ? 2e-6 : 1e-13; }

}  // namespace

TEST_CASE("strided indexer merges axes and maps positions like C-order iteration") {
  const Shape shape{2, 3, 4};
  const Strides strides[2] = {contiguous_strides(shape), contiguous_strides(shape)};
  const auto ix = cuda::make_indexer<2>("test", shape, strides);
  CHECK(ix.ndim == 1);  // contiguous for both: one axis of 24
  CHECK(ix.sizes[0] == 24);
  const Tensor t = arange(24, DType::Float32).view({2, 3, 4}).permute({2, 0, 1});
  const Strides strided[1] = {t.strides()};
  const auto tx = cuda::make_indexer<1>("test", t.shape(), strided);
  const std::vector<float> want = t.to_vector<float>();
  const float* base = t.data<float>();
  CHECK(tx.index32);
  auto wide = tx;
  wide.index32 = false;  // the 64-bit path of huge tensors, on the same shape
  for (std::int64_t i = 0; i < 24; ++i) {
    std::int64_t off[1], off_wide[1];
    tx.offsets(i, off);
    wide.offsets(i, off_wide);
    CHECK(base[off[0]] == want[i]);
    CHECK(off_wide[0] == off[0]);
  }
  // More than kMaxDims unmergeable axes is a ShapeError naming the op.
  Shape many(10, 2);
  Strides odd(10);
  for (int d = 0; d < 10; ++d) odd[d] = std::int64_t{3} << d;  // never mergeable
  const Strides too_many[1] = {odd};
  test::check_error<ShapeError>([&] { cuda::make_indexer<1>("add", many, too_many); }, {"add", "at most 8"});
}

TEST_CASE("binary bodies over broadcast, strided operands match the CPU ops") {
  const std::vector<std::pair<BinaryOp, std::function<Tensor(const Tensor&, const Tensor&)>>> ops_table = {
      {BinaryOp::Add, ops::add}, {BinaryOp::Sub, ops::sub}, {BinaryOp::Mul, ops::mul}, {BinaryOp::Div, ops::div},
      {BinaryOp::Maximum, ops::maximum}, {BinaryOp::Minimum, ops::minimum}};
  Generator gen(11);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (int trial = 0; trial < 30; ++trial) {
      const Shape shape = random_shape(gen, 1 + static_cast<int>(gen.next_u64() % 5));
      const Tensor a = maybe_strided(shape, gen, dtype, trial % 2 == 0);
      const Tensor b = maybe_strided(broadcastable_to(shape, gen), gen, dtype, trial % 3 == 0, 0.5, 2.0);
      for (const auto& [op, cpu] : ops_table) {
        INFO("op ", static_cast<int>(op), " shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
        check_same(host_binary(op, a, b), cpu(a, b), rtol_for(dtype), 0.0);
      }
    }
  }
}

TEST_CASE("activation backward bodies match the fused CPU helpers") {
  const std::vector<std::pair<BinaryOp, std::function<Tensor(const Tensor&, const Tensor&)>>> ops_table = {
      {BinaryOp::ReluBackward, ops::relu_backward}, {BinaryOp::Relu6Backward, ops::relu6_backward},
      {BinaryOp::SigmoidBackward, ops::sigmoid_backward}, {BinaryOp::TanhBackward, ops::tanh_backward},
      {BinaryOp::AbsBackward, ops::abs_backward},         {BinaryOp::GeluBackward, ops::gelu_backward},
      {BinaryOp::SiluBackward, ops::silu_backward},       {BinaryOp::SoftplusBackward, ops::softplus_backward}};
  Generator gen(12);
  for (int trial = 0; trial < 20; ++trial) {
    const Shape shape = random_shape(gen, 1 + trial % 4, 9);
    const Tensor g = maybe_strided(shape, gen, DType::Float32, trial % 2 == 0);
    const Tensor x = maybe_strided(shape, gen, DType::Float32, trial % 3 == 0, -1.0, 7.0);
    for (const auto& [op, cpu] : ops_table) {
      check_same(host_binary(op, g, x), cpu(g, x), 2e-6, 1e-7);
    }
  }
}

TEST_CASE("unary, power and clamp bodies match the CPU ops") {
  const std::vector<std::pair<UnaryOp, std::function<Tensor(const Tensor&)>>> ops_table = {
      {UnaryOp::Neg, ops::neg},   {UnaryOp::Exp, ops::exp},     {UnaryOp::Log, ops::log},
      {UnaryOp::Sqrt, ops::sqrt}, {UnaryOp::Abs, ops::abs},     {UnaryOp::Relu, ops::relu},
      {UnaryOp::Relu6, ops::relu6}, {UnaryOp::Sigmoid, ops::sigmoid}, {UnaryOp::Tanh, ops::tanh},
      {UnaryOp::Gelu, ops::gelu}, {UnaryOp::Silu, ops::silu},   {UnaryOp::Softplus, ops::softplus}};
  Generator gen(13);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (int trial = 0; trial < 10; ++trial) {
      const Shape shape = random_shape(gen, 1 + trial % 4, 9);
      const bool positive_only = trial % 2 == 0;
      const Tensor a = maybe_strided(shape, gen, dtype, trial % 3 == 0, positive_only ? 0.01 : -8.0, 8.0);
      // The CPU's float32 vector exp/log/tanh are polynomial approximations.
      const double rtol = dtype == DType::Float32 ? 2e-6 : 1e-14, atol = dtype == DType::Float32 ? 1e-7 : 0.0;
      for (const auto& [op, cpu] : ops_table) {
        if ((op == UnaryOp::Log || op == UnaryOp::Sqrt) && !positive_only) continue;
        INFO("unary op ", static_cast<int>(op), " shape ", shape_str(shape), " ", dtype_name(dtype));
        check_same(host_unary(op, a), cpu(a), rtol, atol);
      }
      for (double e : {2.0, 0.5, -1.0, 3.0, 1.5}) {
        if (!positive_only && (e == 0.5 || e == 1.5)) continue;
        const Tensor got = dtype == DType::Float32
                               ? host_map1<float>(a, [e](float x) { return kernels::pow_exact_value(x, static_cast<float>(e)); })
                               : host_map1<double>(a, [e](double x) { return kernels::pow_exact_value(x, e); });
        check_same(got, ops::pow_scalar(a, e), rtol, atol);
      }
      const Tensor clamped = dtype == DType::Float32
                                 ? host_map1<float>(a, [](float x) { return kernels::clamp_value(x, -1.0f, 1.5f); })
                                 : host_map1<double>(a, [](double x) { return kernels::clamp_value(x, -1.0, 1.5); });
      check_same(clamped, ops::clamp(a, -1.0, 1.5), 0.0, 0.0);
    }
  }
}

TEST_CASE("the clip body is ops::clamp_, NaN included") {
  Tensor a = from_vector<float>({-3.0f, -0.5f, 0.0f, 0.7f, 9.0f, std::numeric_limits<float>::quiet_NaN()});
  const Tensor got = host_map1<float>(a, [](float x) { return kernels::clip_value(x, -1.0f, 1.0f); });
  ops::clamp_(a, -1.0, 1.0);
  CHECK(got.to_vector<float>() == a.to_vector<float>());
  CHECK(a.to_vector<float>()[5] == -1.0f);  // fmax(NaN, -1) = -1
}

TEST_CASE("the reduction plan with the combine steps matches sum and max") {
  Generator gen(14);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (int trial = 0; trial < 40; ++trial) {
      const int rank = 1 + trial % 5;
      const Shape shape = random_shape(gen, rank, 7);
      const Tensor a = maybe_strided(shape, gen, dtype, trial % 2 == 1);
      std::vector<bool> flags(rank);
      ops::Axes axes;
      for (int d = 0; d < rank; ++d)
        if (gen.next_u64() % 2 == 0) {
          flags[d] = true;
          axes.push_back(d);
        }
      if (axes.empty()) {
        flags.assign(rank, true);  // empty axes: all of them
      }
      const cuda::ReducePlan plan = cuda::make_reduce_plan(a.shape(), a.strides(), flags);
      for (bool is_max : {false, true}) {
        std::vector<double> got(plan.n_out);
        dispatch_dtype(dtype, [&](auto tag) {
          using T = decltype(tag);
          if constexpr (std::is_floating_point_v<T>) {
            const T* in = a.data<T>();
            for (std::int64_t o = 0; o < plan.n_out; ++o) {
              std::int64_t base[1];
              plan.outer.offsets(o, base);
              if (is_max)
                got[o] = cuda::reduce_fold<ReduceOp::Max>(kernels::reduce_identity<ReduceOp::Max, T>(), in, base[0],
                                                          plan.inner, 0, plan.n_inner);
              else
                got[o] = static_cast<T>(cuda::reduce_fold<ReduceOp::Sum>(0.0, in, base[0], plan.inner, 0, plan.n_inner));
            }
          }
        });
        const Tensor want = is_max ? ops::max(a, axes, true) : ops::sum(a, axes, true);
        INFO("shape ", shape_str(shape), " axes ", axes.size(), is_max ? " max" : " sum");
        const std::vector<double> w = want.to_vector<double>();
        REQUIRE(w.size() == got.size());
        for (std::size_t i = 0; i < w.size(); ++i)
          CHECK(std::abs(got[i] - w[i]) <= (dtype == DType::Float32 ? 1e-5 : 1e-12) * (1 + std::abs(w[i])));
      }
    }
  }
}

TEST_CASE("max and argmax steps skip NaN like the CPU ops") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::vector<float>> rows = {
      {1, 3, 3, 2}, {nan, 1, 5, 5}, {nan, nan, -1, -2}, {-4, nan, -4, -5}, {nan, nan, nan, nan}};
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const Tensor t = from_vector<float>(flat, {static_cast<std::int64_t>(rows.size()), 4});
  const std::vector<std::int64_t> want_index = ops::argmax(t, 1).to_vector<std::int64_t>();
  const std::vector<float> want_max = ops::max(t, {1}).to_vector<float>();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    float best = 0, m = kernels::reduce_identity<ReduceOp::Max, float>();
    std::int64_t index = -1;
    for (std::int64_t j = 0; j < 4; ++j) {
      kernels::argmax_step(best, index, rows[r][j], j);
      m = kernels::reduce_combine<ReduceOp::Max>(m, rows[r][j]);
    }
    INFO("row ", r);
    CHECK(index == want_index[r]);
    CHECK((m == want_max[r] || (std::isnan(m) && std::isnan(want_max[r]))));
  }
}

namespace {

// The softmax kernels' row logic on the host (one "block" per row).
template <class T>
struct HostRow {
  const T* x;
  std::int64_t n;
  T max() const {
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
  }
  T exp_sum(T m) const {
    T s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += kernels::math_exp(x[i] - m);
    return s;
  }
};

}  // namespace

TEST_CASE("softmax-family bodies match the CPU softmax ops row by row") {
  Generator gen(15);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1, 1}, Shape{3, 10}, Shape{2, 3, 17}, Shape{5, 1000}, Shape{7}}) {
      const Tensor x = test::random_tensor(shape, gen, dtype, -6.0, 6.0);
      const Tensor g = test::random_tensor(shape, gen, dtype);
      const std::int64_t cols = shape.back(), rows = x.numel() / cols;
      const double tol = dtype == DType::Float32 ? 3e-6 : 1e-13;
      dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_floating_point_v<T>) {
          Tensor sm = Tensor::empty(shape, dtype), lsm = Tensor::empty(shape, dtype);
          for (std::int64_t r = 0; r < rows; ++r) {
            const HostRow<T> row{x.data<T>() + r * cols, cols};
            const T m = row.max(), s = row.exp_sum(m), log_s = kernels::math_log(s);
            for (std::int64_t i = 0; i < cols; ++i) {
              sm.data<T>()[r * cols + i] = kernels::softmax_value(row.x[i], m, s);
              lsm.data<T>()[r * cols + i] = kernels::log_softmax_value(row.x[i], m, log_s);
            }
          }
          check_same(sm, ops::softmax(x), tol, tol);
          check_same(lsm, ops::log_softmax(x), tol, tol);
          Tensor dsm = Tensor::empty(shape, dtype), dlsm = Tensor::empty(shape, dtype);
          for (std::int64_t r = 0; r < rows; ++r) {
            const T* gr = g.data<T>() + r * cols;
            const T* yr = sm.data<T>() + r * cols;
            const T* lyr = lsm.data<T>() + r * cols;
            T dot = 0, sum_g = 0;
            for (std::int64_t i = 0; i < cols; ++i) {
              dot += gr[i] * yr[i];
              sum_g += gr[i];
            }
            for (std::int64_t i = 0; i < cols; ++i) {
              dsm.data<T>()[r * cols + i] = kernels::softmax_backward_value(gr[i], yr[i], dot);
              dlsm.data<T>()[r * cols + i] = kernels::log_softmax_backward_value(gr[i], lyr[i], sum_g);
            }
          }
          check_same(dsm, ops::softmax_backward(g, sm), tol, tol);
          check_same(dlsm, ops::log_softmax_backward(g, lsm), tol, tol);
        }
      });
    }
  }
}

TEST_CASE("cross-entropy bodies match the fused CPU op for labels and probabilities") {
  Generator gen(16);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1, 1}, Shape{4, 5}, Shape{9, 104}}) {
      const std::int64_t n = shape[0], c = shape[1];
      const Tensor logits = test::random_tensor(shape, gen, dtype, -5.0, 5.0);
      std::vector<std::int64_t> labels(n);
      for (auto& l : labels) l = static_cast<std::int64_t>(gen.next_u64() % c);
      const Tensor label_t = from_vector<std::int64_t>(labels);
      const Tensor target = ops::softmax(test::random_tensor(shape, gen, dtype));  // rows sum to 1
      const Tensor grad = test::random_tensor({n}, gen, dtype);
      const double tol = dtype == DType::Float32 ? 5e-6 : 1e-13;
      dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_floating_point_v<T>) {
          Tensor loss_label = Tensor::empty({n}, dtype), loss_prob = Tensor::empty({n}, dtype);
          Tensor probs = Tensor::empty(shape, dtype), d_label = Tensor::empty(shape, dtype),
                 d_prob = Tensor::empty(shape, dtype);
          for (std::int64_t r = 0; r < n; ++r) {
            const HostRow<T> row{logits.data<T>() + r * c, c};
            const T m = row.max(), s = row.exp_sum(m), log_s = kernels::math_log(s);
            REQUIRE(kernels::label_in_range(labels[r], c));
            loss_label.data<T>()[r] = kernels::cross_entropy_label_loss(row.x[labels[r]], m, log_s);
            T acc = 0;
            for (std::int64_t i = 0; i < c; ++i) {
              acc += kernels::cross_entropy_term(target.data<T>()[r * c + i], row.x[i], m, log_s);
              probs.data<T>()[r * c + i] = kernels::softmax_value(row.x[i], m, s);
            }
            loss_prob.data<T>()[r] = acc;
            const T gr = grad.data<T>()[r];
            for (std::int64_t i = 0; i < c; ++i) {
              const T p = probs.data<T>()[r * c + i];
              d_label.data<T>()[r * c + i] = kernels::cross_entropy_backward_value(gr, p, T(i == labels[r] ? 1 : 0));
              d_prob.data<T>()[r * c + i] = kernels::cross_entropy_backward_value(gr, p, target.data<T>()[r * c + i]);
            }
          }
          Tensor cpu_probs;
          check_same(loss_label, ops::softmax_cross_entropy(logits, label_t, &cpu_probs), tol, tol);
          check_same(probs, cpu_probs, tol, tol);
          check_same(loss_prob, ops::softmax_cross_entropy(logits, target), tol, tol);
          check_same(d_label, ops::softmax_cross_entropy_backward(grad, cpu_probs, label_t), tol, tol);
          check_same(d_prob, ops::softmax_cross_entropy_backward(grad, cpu_probs, target), tol, tol);
        }
      });
    }
  }
  CHECK_FALSE(kernels::label_in_range(-1, 5));
  CHECK_FALSE(kernels::label_in_range(5, 5));
  CHECK(kernels::label_in_range(4, 5));
}

TEST_CASE("the column scheme of the reduction plan covers every element once") {
  Generator gen(17);
  struct Case {
    Shape shape;
    std::vector<bool> reduced;
  };
  for (const Case& c : {Case{{64, 9, 40}, {true, true, false}}, Case{{3, 70, 33}, {false, true, false}},
                        Case{{130, 64}, {true, false}}, Case{{2, 100000, 32}, {false, true, false}},
                        Case{{64, 7, 7, 1280}, {true, true, true, false}}}) {
    const Tensor a = test::random_tensor(c.shape, gen, DType::Float64);
    const cuda::ReducePlan plan = cuda::make_reduce_plan(a.shape(), a.strides(), c.reduced);
    INFO("shape ", shape_str(c.shape));
    REQUIRE(plan.chunks > 0);
    CHECK(plan.chunks * plan.chunk_len >= plan.n_inner);
    CHECK((plan.chunks - 1) * plan.chunk_len < plan.n_inner);
    const ops::Axes axes = axes_of(c.reduced);
    // The two kernels on the host: partials per (chunk, output), then chunk order.
    std::vector<double> partial(plan.chunks * plan.n_out), partial_max(plan.chunks * plan.n_out);
    const double* in = a.data<double>();
    for (std::int64_t o = 0; o < plan.n_out; ++o) {
      std::int64_t base[1];
      plan.outer.offsets(o, base);
      for (std::int64_t ch = 0; ch < plan.chunks; ++ch) {
        const std::int64_t begin = ch * plan.chunk_len, end = std::min(plan.n_inner, begin + plan.chunk_len);
        partial[ch * plan.n_out + o] = cuda::reduce_fold<ReduceOp::Sum>(0.0, in, base[0], plan.inner, begin, end);
        partial_max[ch * plan.n_out + o] = cuda::reduce_fold<ReduceOp::Max>(
            kernels::reduce_identity<ReduceOp::Max, double>(), in, base[0], plan.inner, begin, end);
      }
    }
    const std::vector<double> want_sum = ops::sum(a, axes).to_vector<double>();
    const std::vector<double> want_max = ops::max(a, axes).to_vector<double>();
    for (std::int64_t o = 0; o < plan.n_out; ++o) {
      double sum = 0, max = kernels::reduce_identity<ReduceOp::Max, double>();
      for (std::int64_t ch = 0; ch < plan.chunks; ++ch) {
        sum = kernels::reduce_combine<ReduceOp::Sum>(sum, partial[ch * plan.n_out + o]);
        max = kernels::reduce_combine<ReduceOp::Max>(max, partial_max[ch * plan.n_out + o]);
      }
      CHECK(sum == doctest::Approx(want_sum[o]).epsilon(1e-12));
      CHECK(max == want_max[o]);
    }
  }
  // A strided innermost kept axis does not take the column scheme.
  const Tensor t = test::random_tensor({40, 70}, gen).transpose(0, 1);  // [70, 40], inner stride 70
  CHECK(cuda::make_reduce_plan(t.shape(), t.strides(), {true, false}).chunks == 0);
}

TEST_CASE("the split scheme of the reduction plan covers every element once") {
  Generator gen(18);
  struct Case {
    Shape shape;
    std::vector<bool> reduced;
  };
  for (const Case& c : {Case{{2, 100000}, {false, true}}, Case{{300001}, {true}}, Case{{5, 40000, 3}, {false, true, false}},
                        Case{{64, 7, 7, 8}, {true, true, true, true}}}) {
    const Tensor a = test::random_tensor(c.shape, gen, DType::Float64);
    const cuda::ReducePlan plan = cuda::make_reduce_plan(a.shape(), a.strides(), c.reduced);
    INFO("shape ", shape_str(c.shape));
    REQUIRE(plan.chunks == 0);
    REQUIRE(plan.split_chunks > 0);
    CHECK(plan.split_chunks * plan.split_len >= plan.n_inner);
    CHECK((plan.split_chunks - 1) * plan.split_len < plan.n_inner);
    const ops::Axes axes = axes_of(c.reduced);
    const std::vector<double> want = ops::sum(a, axes).to_vector<double>();
    const double* in = a.data<double>();
    for (std::int64_t o = 0; o < plan.n_out; ++o) {
      std::int64_t base[1];
      plan.outer.offsets(o, base);
      double total = 0;
      for (std::int64_t ch = 0; ch < plan.split_chunks; ++ch) {
        const std::int64_t begin = ch * plan.split_len, end = std::min(plan.n_inner, begin + plan.split_len);
        total = kernels::reduce_combine<ReduceOp::Sum>(
            total, cuda::reduce_fold<ReduceOp::Sum>(0.0, in, base[0], plan.inner, begin, end));
      }
      CHECK(total == doctest::Approx(want[o]).epsilon(1e-11));
    }
  }
  // Small reductions keep one block (or thread) per output.
  const Tensor small = test::random_tensor({4, 1000}, gen);
  const cuda::ReducePlan plan = cuda::make_reduce_plan(small.shape(), small.strides(), {false, true});
  CHECK(plan.split_chunks == 0);
  CHECK(plan.chunks == 0);
}

namespace {
int g_reuse_calls = 0;
void* g_last_reused = nullptr;
}  // namespace

TEST_CASE("the pinned allocator asks before_reuse before it hands out a cached buffer") {
  // The CUDA backend's asynchronous copies from pinned memory rely on this
  // hook (it waits for pending copies there); here a counting stand-in.
  set_pinned_host_memory_hook({[](std::size_t n) { return std::aligned_alloc(Allocator::kAlignment, n); },
                               [](void* p) { std::free(p); },
                               [](void* p) {
                                 ++g_reuse_calls;
                                 g_last_reused = p;
                               }});
  void* first = nullptr;
  {
    const Tensor a = Tensor::empty_pinned({1000});
    first = a.raw_data();
    CHECK(g_reuse_calls == 0);  // fresh memory: nothing to wait for
  }
  {
    const Tensor b = Tensor::empty_pinned({1000});
    CHECK(b.raw_data() == first);
    CHECK(g_reuse_calls == 1);
    CHECK(g_last_reused == first);
  }
  set_pinned_host_memory_hook({});  // back to plain aligned memory
}

TEST_CASE("the off-CPU pad and slice gradient (concat and contiguous copies) match the CPU forms") {
  Generator gen(14);
  for (int trial = 0; trial < 40; ++trial) {
    const int rank = 1 + trial % 4;
    const Shape shape = random_shape(gen, rank, 5);
    const DType dtype = trial % 2 == 0 ? DType::Float32 : DType::Float64;
    const Tensor a = maybe_strided(shape, gen, dtype, trial % 3 == 0);
    std::vector<std::pair<std::int64_t, std::int64_t>> pads;
    for (int d = 0; d < rank; ++d)
      pads.emplace_back(static_cast<std::int64_t>(gen.next_u64() % 3), static_cast<std::int64_t>(gen.next_u64() % 3));
    INFO("pad ", shape_str(shape), " trial ", trial);
    check_same(ops::detail::pad_by_concat(a, pads, 0.75), ops::pad(a, pads, 0.75), 0.0, 0.0);

    // A stepped slice of a random axis of an input of `shape`, and its gradient.
    const std::int64_t axis = static_cast<std::int64_t>(gen.next_u64() % rank);
    const std::int64_t n = shape[axis], step = 1 + static_cast<std::int64_t>(gen.next_u64() % 3);
    const std::int64_t start = static_cast<std::int64_t>(gen.next_u64() % n);
    const std::int64_t len = 1 + (n - 1 - start) / step;
    Shape grad_shape = shape;
    grad_shape[axis] = len;
    const Tensor g = maybe_strided(grad_shape, gen, dtype, trial % 3 == 1);
    INFO("slice gradient ", shape_str(grad_shape), " into ", shape_str(shape), " axis ", axis, " from ", start,
         " step ", step);
    check_same(ops::detail::slice_backward_by_pad(g, shape, axis, start, step),
               ops::slice_backward(g, shape, axis, start, step), 0.0, 0.0);
  }
}
