// CUDA softmax family over the last axis and the fused softmax
// cross-entropy: one block per row (grid-stride over rows), block
// reductions for the row max and sums, per-element formulas from
// kernels/portable/softmax_ops.hpp (shared with the CPU ops).
#include <limits>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/portable/dispatch.hpp"
#include "kernels/portable/math.hpp"
#include "kernels/portable/reduce_ops.hpp"
#include "kernels/portable/softmax_ops.hpp"

namespace petal::cuda_ops {
namespace {

using kernels::dispatch_floating;
using kernels::reduce_combine;
using kernels::ReduceOp;

// Threads per row: a warp for narrow rows, more for wide ones.
int threads_for(std::int64_t cols) { return cols <= 64 ? 32 : (cols <= 512 ? 128 : 256); }

template <class T>
__device__ T row_max(const T* x, std::int64_t cols) {
  T m = kernels::reduce_identity<ReduceOp::Max, T>();
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = reduce_combine<ReduceOp::Max>(m, x[i]);
  return cuda::block_combine<ReduceOp::Max>(m);
}

template <class T>
__device__ T row_exp_sum(const T* x, std::int64_t cols, T m) {
  T s = 0;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
    s = reduce_combine<ReduceOp::Sum>(s, kernels::shifted_exp(x[i], m));
  return cuda::block_combine<ReduceOp::Sum>(s);
}

template <class T, bool kLog>
__global__ void softmax_kernel(const T* x, T* y, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = row_max(xr, cols);
    const T s = row_exp_sum(xr, cols, m);
    if constexpr (kLog) {
      const T log_s = kernels::math_log(s);
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = kernels::log_softmax_value(xr[i], m, log_s);
    } else {
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = kernels::softmax_value(xr[i], m, s);
    }
  }
}

template <class T, bool kLog>
__global__ void softmax_backward_kernel(const T* g, const T* saved, T* dx, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* gr = g + r * cols;
    const T* sr = saved + r * cols;
    T* dr = dx + r * cols;
    T acc = 0;
    for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) acc += kLog ? gr[i] : gr[i] * sr[i];
    acc = cuda::block_combine<ReduceOp::Sum>(acc);
    for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
      dr[i] = kLog ? kernels::log_softmax_backward_value(gr[i], sr[i], acc) : kernels::softmax_backward_value(gr[i], sr[i], acc);
  }
}

// target: probabilities [rows, cols] (labels == nullptr) or class labels
// [rows]. A label outside [0, cols) gives a NaN loss and lowers *bad_row to
// the smallest such row (initialised to rows).
template <class T>
__global__ void cross_entropy_kernel(const T* x, const T* target, const std::int64_t* labels, T* loss, T* probs,
                                     std::int64_t rows, std::int64_t cols, unsigned long long* bad_row) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    const T m = row_max(xr, cols);
    const T s = row_exp_sum(xr, cols, m);
    const T log_s = kernels::math_log(s);
    if (probs)
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) probs[r * cols + i] = kernels::softmax_value(xr[i], m, s);
    if (labels) {
      if (threadIdx.x == 0) {
        const std::int64_t label = labels[r];
        if (kernels::label_in_range(label, cols)) {
          loss[r] = kernels::cross_entropy_label_loss(xr[label], m, log_s);
        } else {
          loss[r] = std::numeric_limits<T>::quiet_NaN();
          atomicMin(bad_row, static_cast<unsigned long long>(r));
        }
      }
    } else {
      const T* tr = target + r * cols;
      T acc = 0;
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) acc += kernels::cross_entropy_term(tr[i], xr[i], m, log_s);
      acc = cuda::block_combine<ReduceOp::Sum>(acc);
      if (threadIdx.x == 0) loss[r] = acc;
    }
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* g, const T* probs, const T* target, const std::int64_t* labels,
                                              T* dx, std::int64_t rows, std::int64_t cols, unsigned long long* bad_row) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T gr = g[r];
    if (labels) {
      const std::int64_t label = labels[r];
      const bool ok = kernels::label_in_range(label, cols);
      if (!ok && threadIdx.x == 0) atomicMin(bad_row, static_cast<unsigned long long>(r));
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
        dx[r * cols + i] = kernels::cross_entropy_backward_value(gr, probs[r * cols + i], T(ok && i == label ? 1 : 0));
    } else {
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
        dx[r * cols + i] = kernels::cross_entropy_backward_value(gr, probs[r * cols + i], target[r * cols + i]);
    }
  }
}

std::int64_t last_dim(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape().back(); }

// The launch configuration of a row kernel: one block per row.
struct RowGrid {
  unsigned blocks;
  int threads;
  cudaStream_t stream;
};

// Calls launch(T{}, grid) on `device` for rows of `cols` elements of dtype
// float32 (T = float) or float64.
template <class Launch>
void launch_rows(DType dtype, Device device, std::int64_t rows, std::int64_t cols, Launch&& launch) {
  cuda::DeviceGuard guard(device);
  const RowGrid grid{cuda::blocks_for(rows, 1), threads_for(cols), cuda::current_stream()};
  dispatch_floating(dtype, [&](auto tag) { launch(tag, grid); });
}

template <bool kLog>
Tensor softmax_forward(const Tensor& a) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const std::int64_t cols = last_dim(a), rows = out.numel() / cols;
  const Tensor x = a.contiguous();
  launch_rows(a.dtype(), a.device(), rows, cols, [&](auto tag, RowGrid grid) {
    using T = decltype(tag);
    softmax_kernel<T, kLog><<<grid.blocks, grid.threads, 0, grid.stream>>>(x.data<T>(), out.data<T>(), rows, cols);
  });
  cuda::check_launch(str_cat(kLog ? "log_softmax" : "softmax", " of ", shape_str(a.shape())));
  return out;
}

template <bool kLog>
Tensor softmax_backward_impl(const Tensor& grad, const Tensor& saved) {
  Tensor out = Tensor::empty(grad.shape(), grad.dtype(), grad.device());
  if (out.numel() == 0) return out;
  const std::int64_t cols = last_dim(grad), rows = out.numel() / cols;
  const Tensor g = grad.contiguous(), s = saved.contiguous();
  launch_rows(grad.dtype(), grad.device(), rows, cols, [&](auto tag, RowGrid grid) {
    using T = decltype(tag);
    softmax_backward_kernel<T, kLog>
        <<<grid.blocks, grid.threads, 0, grid.stream>>>(g.data<T>(), s.data<T>(), out.data<T>(), rows, cols);
  });
  cuda::check_launch(str_cat(kLog ? "log_softmax_backward" : "softmax_backward", " of ", shape_str(grad.shape())));
  return out;
}

// A device counter for the first bad label row, set to `rows` (none).
Tensor bad_row_flag(std::int64_t rows, Device device) {
  return full({1}, static_cast<double>(rows), DType::Int64, device);
}

// Throws IndexError (as the CPU op does) when the kernel flagged a row.
void check_bad_row(const char* op, const Tensor& flag, const Tensor& labels, std::int64_t rows, const Shape& scores) {
  const std::int64_t row = flag.item<std::int64_t>();
  if (row >= rows) return;
  const std::int64_t label = labels.select(0, row).item<std::int64_t>();
  throw IndexError(str_cat(op, ": target class ", label, " at row ", row, " is out of range [0, ", scores[1],
                           ") for scores of shape ", shape_str(scores)));
}

unsigned long long* flag_ptr(Tensor& flag) { return reinterpret_cast<unsigned long long*>(flag.data<std::int64_t>()); }

// A cross-entropy target on the device: int64 labels (checked by the
// kernel through a bad-row flag) or float probabilities.
struct DeviceTarget {
  Tensor t;  // contiguous
  bool labels;
  Tensor flag;
  DeviceTarget(const Tensor& target, std::int64_t rows)
      : t(target.contiguous()), labels(target.dtype() == DType::Int64), flag(bad_row_flag(rows, target.device())) {}
  const std::int64_t* label_data() const { return labels ? t.data<std::int64_t>() : nullptr; }
  template <class T> const T* prob_data() const { return labels ? nullptr : t.data<T>(); }
  // Throws IndexError when the kernel flagged a label out of range.
  void check(const char* op, std::int64_t rows, const Shape& scores) {
    if (labels) check_bad_row(op, flag, t, rows, scores);
  }
};

}  // namespace

Tensor softmax(const Tensor& a) { return softmax_forward<false>(a); }
Tensor log_softmax(const Tensor& a) { return softmax_forward<true>(a); }
Tensor softmax_backward(const Tensor& grad, const Tensor& y) { return softmax_backward_impl<false>(grad, y); }
Tensor log_softmax_backward(const Tensor& grad, const Tensor& log_y) { return softmax_backward_impl<true>(grad, log_y); }

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor* probs) {
  const std::int64_t rows = logits.shape()[0], cols = logits.shape()[1];
  Tensor loss = Tensor::empty({rows}, logits.dtype(), logits.device());
  Tensor p = probs ? Tensor::empty(logits.shape(), logits.dtype(), logits.device()) : Tensor();
  if (probs) *probs = p;
  if (rows == 0) return loss;
  const Tensor x = logits.contiguous();
  DeviceTarget t(target, rows);
  launch_rows(logits.dtype(), logits.device(), rows, cols, [&](auto tag, RowGrid grid) {
    using T = decltype(tag);
    cross_entropy_kernel<T>
        <<<grid.blocks, grid.threads, 0, grid.stream>>>(x.data<T>(), t.prob_data<T>(), t.label_data(), loss.data<T>(),
                                                        probs ? p.data<T>() : nullptr, rows, cols, flag_ptr(t.flag));
  });
  cuda::check_launch(str_cat("softmax_cross_entropy of ", shape_str(logits.shape()), " and ", shape_str(target.shape())));
  t.check("softmax_cross_entropy", rows, logits.shape());
  return loss;
}

Tensor softmax_cross_entropy_backward(const Tensor& grad_loss, const Tensor& probs, const Tensor& target) {
  const std::int64_t rows = probs.shape()[0], cols = probs.shape()[1];
  Tensor dx = Tensor::empty(probs.shape(), probs.dtype(), probs.device());
  if (rows == 0) return dx;
  const Tensor g = grad_loss.contiguous(), p = probs.contiguous();
  DeviceTarget t(target, rows);
  launch_rows(probs.dtype(), probs.device(), rows, cols, [&](auto tag, RowGrid grid) {
    using T = decltype(tag);
    cross_entropy_backward_kernel<T><<<grid.blocks, grid.threads, 0, grid.stream>>>(
        g.data<T>(), p.data<T>(), t.prob_data<T>(), t.label_data(), dx.data<T>(), rows, cols, flag_ptr(t.flag));
  });
  cuda::check_launch(str_cat("softmax_cross_entropy_backward of ", shape_str(probs.shape()), " and ",
                             shape_str(target.shape())));
  t.check("softmax_cross_entropy_backward", rows, probs.shape());
  return dx;
}

}  // namespace petal::cuda_ops
