// Softmax family over the last axis and the fused softmax cross-entropy.
// Rows are independent: threads split rows; float32 rows go to the per-ISA
// kernels, float64 rows (gradient checks) to the plain loops below over the
// per-element formulas of kernels/portable/softmax_ops.hpp (the CUDA
// kernels' formulas too).
#include <type_traits>

#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"
#include "kernels/portable/dispatch.hpp"
#include "kernels/portable/math.hpp"
#include "kernels/portable/reduce_ops.hpp"
#include "kernels/portable/softmax_ops.hpp"

namespace petal::ops {
namespace {

using detail::kParallelGrain;
using kernels::dispatch_floating;
using kernels::reduce_combine;
using kernels::ReduceOp;

// ---- float64 rows ----
template <ReduceOp kOp, class T> T row_reduce(const T* x, std::int64_t n) {
  T acc = kernels::reduce_identity<kOp, T>();
  for (std::int64_t i = 0; i < n; ++i) acc = reduce_combine<kOp>(acc, x[i]);
  return acc;
}
// sum(exp(x - m)); when e is not null it also receives exp(x - m).
template <class T> T exp_sum(const T* x, T m, T* e, std::int64_t n) {
  T s = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T v = kernels::shifted_exp(x[i], m);
    if (e) e[i] = v;
    s = reduce_combine<ReduceOp::Sum>(s, v);
  }
  return s;
}
// softmax from the stored exp(x - m): the division of softmax_value without
// a second exp.
template <class T> void normalize_row(T* e, T s, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) e[i] /= s;
}
template <class T> void softmax_row(const T* x, T* y, std::int64_t n) {
  normalize_row(y, exp_sum(x, row_reduce<ReduceOp::Max>(x, n), y, n), n);
}
template <class T> void log_softmax_row(const T* x, T* y, std::int64_t n) {
  const T m = row_reduce<ReduceOp::Max>(x, n);
  const T log_s = kernels::math_log(exp_sum(x, m, static_cast<T*>(nullptr), n));
  for (std::int64_t i = 0; i < n; ++i) y[i] = kernels::log_softmax_value(x[i], m, log_s);
}
template <class T> void softmax_backward_row(const T* g, const T* y, T* dx, std::int64_t n) {
  T dot = 0;
  for (std::int64_t i = 0; i < n; ++i) dot += g[i] * y[i];
  for (std::int64_t i = 0; i < n; ++i) dx[i] = kernels::softmax_backward_value(g[i], y[i], dot);
}
template <class T> void log_softmax_backward_row(const T* g, const T* log_y, T* dx, std::int64_t n) {
  const T sum_g = row_reduce<ReduceOp::Sum>(g, n);
  for (std::int64_t i = 0; i < n; ++i) dx[i] = kernels::log_softmax_backward_value(g[i], log_y[i], sum_g);
}
template <class T> T shifted_log_sum_exp(const T* x, T m, T* probs, std::int64_t n) {
  const T s = exp_sum(x, m, probs, n);
  if (probs) normalize_row(probs, s, n);
  return kernels::math_log(s);
}
template <class T> T cross_entropy_row(const T* x, const T* t, T* probs, std::int64_t n) {
  const T m = row_reduce<ReduceOp::Max>(x, n);
  const T log_s = shifted_log_sum_exp(x, m, probs, n);
  T loss = 0;
  for (std::int64_t i = 0; i < n; ++i) loss += kernels::cross_entropy_term(t[i], x[i], m, log_s);
  return loss;
}
template <class T> T cross_entropy_label_row(const T* x, std::int64_t label, T* probs, std::int64_t n) {
  const T m = row_reduce<ReduceOp::Max>(x, n);
  return kernels::cross_entropy_label_loss(x[label], m, shifted_log_sum_exp(x, m, probs, n));
}
template <class T> void cross_entropy_backward_row(T g, const T* probs, const T* t, T* dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = kernels::cross_entropy_backward_value(g, probs[i], t[i]);
}

// Row kernels for T: the active ISA's table for float, the loops above for double.
template <class T>
struct SoftmaxRows {
  void (*softmax)(const T*, T*, std::int64_t);
  void (*log_softmax)(const T*, T*, std::int64_t);
  void (*softmax_backward)(const T*, const T*, T*, std::int64_t);
  void (*log_softmax_backward)(const T*, const T*, T*, std::int64_t);
  T (*cross_entropy)(const T*, const T*, T*, std::int64_t);
  T (*cross_entropy_label)(const T*, std::int64_t, T*, std::int64_t);
  void (*cross_entropy_backward)(T, const T*, const T*, T*, std::int64_t);
};

template <class T>
SoftmaxRows<T> softmax_rows() {
  if constexpr (std::is_same_v<T, float>) {
    const auto& k = cpu::softmax_table();
    return {k.softmax_row,       k.log_softmax_row,         k.softmax_backward_row,      k.log_softmax_backward_row,
            k.cross_entropy_row, k.cross_entropy_label_row, k.cross_entropy_backward_row};
  } else {
    return {&softmax_row<T>,       &log_softmax_row<T>,         &softmax_backward_row<T>,      &log_softmax_backward_row<T>,
            &cross_entropy_row<T>, &cross_entropy_label_row<T>, &cross_entropy_backward_row<T>};
  }
}

// Runs fn(row) for every row in parallel; rows of length `cols`.
template <class Fn>
void for_each_row(std::int64_t rows, std::int64_t cols, Fn&& fn) {
  parallel_for(0, rows, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(cols, 1)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t r = lo; r < hi; ++r) fn(r);
               });
}

std::int64_t last_dim(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape().back(); }

// softmax / log_softmax: one input, rows over the last axis; on_cuda()
// runs it on a CUDA tensor.
template <class RowFn, class OnCuda>
Tensor rowwise_unary(const char* op, const Tensor& a, RowFn&& pick, OnCuda&& on_cuda) {
  detail::check_floating_operands(op, {&a});
  switch (detail::select_backend(op, {&a})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: return on_cuda();
  }
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  const std::int64_t cols = last_dim(a);
  if (out.numel() == 0) return out;
  const Tensor x = detail::contiguous_tiled(a);
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto row = pick(softmax_rows<T>());
    const T* px = x.data<T>();
    T* py = out.data<T>();
    for_each_row(out.numel() / cols, cols, [&](std::int64_t r) { row(px + r * cols, py + r * cols, cols); });
  });
  return out;
}

// softmax_backward / log_softmax_backward: grad and the saved output.
template <class RowFn, class OnCuda>
Tensor rowwise_backward(const char* op, const Tensor& grad, const Tensor& saved, RowFn&& pick, OnCuda&& on_cuda) {
  detail::check_floating_operands(op, {&grad, &saved});
  detail::check_same_shape(op, grad, saved);
  switch (detail::select_backend(op, {&grad, &saved})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: return on_cuda();
  }
  Tensor out = Tensor::empty(grad.shape(), grad.dtype());
  const std::int64_t cols = last_dim(grad);
  if (out.numel() == 0) return out;
  const Tensor g = detail::contiguous_tiled(grad), s = detail::contiguous_tiled(saved);
  dispatch_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto row = pick(softmax_rows<T>());
    const T* pg = g.data<T>();
    const T* ps = s.data<T>();
    T* po = out.data<T>();
    for_each_row(out.numel() / cols, cols,
                 [&](std::int64_t r) { row(pg + r * cols, ps + r * cols, po + r * cols, cols); });
  });
  return out;
}

// Checks a cross-entropy target against logits/probs of shape [N, C]: float
// [N, C] of the same dtype, or int64 [N] with every label in [0, C). Labels
// of CUDA tensors are checked by the kernel (no copy to the host here).
void check_target(const char* op, const Tensor& scores, const Tensor& target) {
  const std::int64_t n = scores.shape()[0], c = scores.shape()[1];
  if (target.dtype() == DType::Int64) {
    PETAL_CHECK(target.shape() == Shape{n}, ShapeError, op, ": int64 class targets must have shape [", n,
                "] for scores of shape ", shape_str(scores.shape()), ", got ", shape_str(target.shape()));
    if (!target.device().is_cpu()) return;
    const std::vector<std::int64_t> labels = target.to_vector<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i)
      PETAL_CHECK(labels[i] >= 0 && labels[i] < c, IndexError, op, ": target class ", labels[i], " at row ", i,
                  " is out of range [0, ", c, ") for scores of shape ", shape_str(scores.shape()));
    return;
  }
  PETAL_CHECK(is_floating(target.dtype()), DTypeError, op, ": target must be int64 class indices or ",
              dtype_name(scores.dtype()), " probabilities, got ", dtype_name(target.dtype()), " of shape ",
              shape_str(target.shape()));
  detail::check_same_dtype(op, scores, target);
  PETAL_CHECK(target.shape() == scores.shape(), ShapeError, op, ": probability targets must have the shape of the ",
              "scores ", shape_str(scores.shape()), ", got ", shape_str(target.shape()));
}

void check_matrix(const char* op, const Tensor& scores, const char* what) {
  PETAL_CHECK(scores.dim() == 2, ShapeError, op, ": ", what, " must be 2-D [N, C], got shape ",
              shape_str(scores.shape()));
  PETAL_CHECK(scores.shape()[1] > 0 || scores.shape()[0] == 0, ShapeError, op, ": ", what, " of shape ",
              shape_str(scores.shape()), " have no classes");
}

}  // namespace

Tensor softmax(const Tensor& a) {
  return rowwise_unary("softmax", a, [](const auto& rows) { return rows.softmax; },
                       [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::softmax(a)); });
}

Tensor log_softmax(const Tensor& a) {
  return rowwise_unary("log_softmax", a, [](const auto& rows) { return rows.log_softmax; },
                       [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::log_softmax(a)); });
}

Tensor softmax_backward(const Tensor& grad, const Tensor& y) {
  return rowwise_backward("softmax_backward", grad, y, [](const auto& rows) { return rows.softmax_backward; },
                          [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::softmax_backward(grad, y)); });
}

Tensor log_softmax_backward(const Tensor& grad, const Tensor& log_y) {
  return rowwise_backward("log_softmax_backward", grad, log_y,
                          [](const auto& rows) { return rows.log_softmax_backward; },
                          [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::log_softmax_backward(grad, log_y)); });
}

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor* probs) {
  const char* op = "softmax_cross_entropy";
  detail::check_defined(op, {&logits, &target});
  detail::check_floating(op, logits);
  check_matrix(op, logits, "logits");
  const detail::Backend backend = detail::select_backend(op, {&logits, &target});
  check_target(op, logits, target);
  if (backend == detail::Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::softmax_cross_entropy(logits, target, probs));
  const std::int64_t n = logits.shape()[0], c = logits.shape()[1];
  Tensor loss = Tensor::empty({n}, logits.dtype());
  Tensor p = probs ? Tensor::empty(logits.shape(), logits.dtype()) : Tensor();
  if (n > 0) {
    const Tensor x = detail::contiguous_tiled(logits), t = detail::contiguous_tiled(target);
    dispatch_floating(logits.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const SoftmaxRows<T> rows = softmax_rows<T>();
      const T* px = x.data<T>();
      T* pl = loss.data<T>();
      T* pp = probs ? p.data<T>() : nullptr;
      if (t.dtype() == DType::Int64) {
        const std::int64_t* labels = t.data<std::int64_t>();
        for_each_row(n, c, [&](std::int64_t r) {
          pl[r] = rows.cross_entropy_label(px + r * c, labels[r], pp ? pp + r * c : nullptr, c);
        });
      } else {
        const T* pt = t.data<T>();
        for_each_row(n, c, [&](std::int64_t r) {
          pl[r] = rows.cross_entropy(px + r * c, pt + r * c, pp ? pp + r * c : nullptr, c);
        });
      }
    });
  }
  if (probs) *probs = p;
  return loss;
}

Tensor softmax_cross_entropy_backward(const Tensor& grad_loss, const Tensor& probs, const Tensor& target) {
  const char* op = "softmax_cross_entropy_backward";
  detail::check_floating_operands(op, {&grad_loss, &probs});
  detail::check_defined(op, {&target});
  check_matrix(op, probs, "probs");
  const std::int64_t n = probs.shape()[0], c = probs.shape()[1];
  PETAL_CHECK(grad_loss.shape() == Shape{n}, ShapeError, op, ": grad_loss must have shape [", n,
              "] for probs of shape ", shape_str(probs.shape()), ", got ", shape_str(grad_loss.shape()));
  const detail::Backend backend = detail::select_backend(op, {&grad_loss, &probs, &target});
  check_target(op, probs, target);
  if (backend == detail::Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::softmax_cross_entropy_backward(grad_loss, probs, target));
  Tensor dx = Tensor::empty(probs.shape(), probs.dtype());
  if (n == 0) return dx;
  const Tensor g = detail::contiguous_tiled(grad_loss), p = detail::contiguous_tiled(probs),
               t = detail::contiguous_tiled(target);
  dispatch_floating(probs.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    const T* pp = p.data<T>();
    T* po = dx.data<T>();
    if (t.dtype() == DType::Int64) {
      // g * (probs - onehot(label)) = g * probs, then the label column.
      const std::int64_t* labels = t.data<std::int64_t>();
      const auto affine = cpu::elementwise_table().affine;
      for_each_row(n, c, [&](std::int64_t r) {
        if constexpr (std::is_same_v<T, float>) {
          affine(pp + r * c, pg[r], 0.0f, po + r * c, c);
        } else {
          for (std::int64_t i = 0; i < c; ++i) po[r * c + i] = pg[r] * pp[r * c + i];
        }
        po[r * c + labels[r]] -= pg[r];
      });
    } else {
      const SoftmaxRows<T> rows = softmax_rows<T>();
      const T* pt = t.data<T>();
      for_each_row(n, c, [&](std::int64_t r) { rows.cross_entropy_backward(pg[r], pp + r * c, pt + r * c, po + r * c, c); });
    }
  });
  return dx;
}

}  // namespace petal::ops
