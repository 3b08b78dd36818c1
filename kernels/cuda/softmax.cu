// CUDA softmax family over the last axis and the fused softmax
// cross-entropy: one block per row (grid-stride over rows), block
// reductions for the row max and sums, formulas from softmax_body.hpp.
#include <limits>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/softmax_body.hpp"

namespace petal::cuda_ops {
namespace {

// Threads per row: a warp for narrow rows, more for wide ones.
int threads_for(std::int64_t cols) { return cols <= 64 ? 32 : (cols <= 512 ? 128 : 256); }

template <class T>
__device__ T row_max(const T* x, std::int64_t cols) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = x[i] > m ? x[i] : m;
  return cuda::block_reduce(m, cuda::MaxOp{}, -std::numeric_limits<T>::infinity());
}

template <class T>
__device__ T row_exp_sum(const T* x, std::int64_t cols, T m) {
  T s = 0;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += cuda::math_exp(x[i] - m);
  return cuda::block_reduce(s, cuda::SumOp{}, T(0));
}

template <class T, bool kLog>
__global__ void softmax_kernel(const T* x, T* y, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = row_max(xr, cols);
    const T s = row_exp_sum(xr, cols, m);
    if constexpr (kLog) {
      const T log_s = cuda::math_log(s);
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = cuda::log_softmax_value(xr[i], m, log_s);
    } else {
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = cuda::softmax_value(xr[i], m, s);
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
    acc = cuda::block_reduce(acc, cuda::SumOp{}, T(0));
    for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
      dr[i] = kLog ? cuda::log_softmax_backward_value(gr[i], sr[i], acc) : cuda::softmax_backward_value(gr[i], sr[i], acc);
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
    const T log_s = cuda::math_log(s);
    if (probs)
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) probs[r * cols + i] = cuda::softmax_value(xr[i], m, s);
    if (labels) {
      if (threadIdx.x == 0) {
        const std::int64_t label = labels[r];
        if (cuda::label_in_range(label, cols)) {
          loss[r] = cuda::cross_entropy_label_loss(xr[label], m, log_s);
        } else {
          loss[r] = std::numeric_limits<T>::quiet_NaN();
          atomicMin(bad_row, static_cast<unsigned long long>(r));
        }
      }
    } else {
      const T* tr = target + r * cols;
      T acc = 0;
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) acc += cuda::cross_entropy_term(tr[i], xr[i], m, log_s);
      acc = cuda::block_reduce(acc, cuda::SumOp{}, T(0));
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
      const bool ok = cuda::label_in_range(label, cols);
      if (!ok && threadIdx.x == 0) atomicMin(bad_row, static_cast<unsigned long long>(r));
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
        dx[r * cols + i] = cuda::cross_entropy_backward_value(gr, probs[r * cols + i], T(ok && i == label ? 1 : 0));
    } else {
      for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
        dx[r * cols + i] = cuda::cross_entropy_backward_value(gr, probs[r * cols + i], target[r * cols + i]);
    }
  }
}

std::int64_t last_dim(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape().back(); }

template <bool kLog>
Tensor softmax_forward(const Tensor& a) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const std::int64_t cols = last_dim(a), rows = out.numel() / cols;
  const Tensor x = a.contiguous();
  cuda::DeviceGuard guard(a.device());
  const unsigned blocks = cuda::blocks_for(rows, 1);
  const int threads = threads_for(cols);
  const cudaStream_t stream = cuda::current_stream();
  if (a.dtype() == DType::Float32)
    softmax_kernel<float, kLog><<<blocks, threads, 0, stream>>>(x.data<float>(), out.data<float>(), rows, cols);
  else
    softmax_kernel<double, kLog><<<blocks, threads, 0, stream>>>(x.data<double>(), out.data<double>(), rows, cols);
  cuda::check_launch(str_cat(kLog ? "log_softmax" : "softmax", " of ", shape_str(a.shape())));
  return out;
}

template <bool kLog>
Tensor softmax_backward_impl(const Tensor& grad, const Tensor& saved) {
  Tensor out = Tensor::empty(grad.shape(), grad.dtype(), grad.device());
  if (out.numel() == 0) return out;
  const std::int64_t cols = last_dim(grad), rows = out.numel() / cols;
  const Tensor g = grad.contiguous(), s = saved.contiguous();
  cuda::DeviceGuard guard(grad.device());
  const unsigned blocks = cuda::blocks_for(rows, 1);
  const int threads = threads_for(cols);
  const cudaStream_t stream = cuda::current_stream();
  if (grad.dtype() == DType::Float32)
    softmax_backward_kernel<float, kLog><<<blocks, threads, 0, stream>>>(g.data<float>(), s.data<float>(),
                                                                        out.data<float>(), rows, cols);
  else
    softmax_backward_kernel<double, kLog><<<blocks, threads, 0, stream>>>(g.data<double>(), s.data<double>(),
                                                                         out.data<double>(), rows, cols);
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
  const bool labels = target.dtype() == DType::Int64;
  const Tensor x = logits.contiguous(), t = target.contiguous();
  Tensor flag = bad_row_flag(rows, logits.device());
  cuda::DeviceGuard guard(logits.device());
  const unsigned blocks = cuda::blocks_for(rows, 1);
  const int threads = threads_for(cols);
  const cudaStream_t stream = cuda::current_stream();
  const std::int64_t* pl = labels ? t.data<std::int64_t>() : nullptr;
  if (logits.dtype() == DType::Float32)
    cross_entropy_kernel<float><<<blocks, threads, 0, stream>>>(
        x.data<float>(), labels ? nullptr : t.data<float>(), pl, loss.data<float>(), probs ? p.data<float>() : nullptr,
        rows, cols, flag_ptr(flag));
  else
    cross_entropy_kernel<double><<<blocks, threads, 0, stream>>>(
        x.data<double>(), labels ? nullptr : t.data<double>(), pl, loss.data<double>(),
        probs ? p.data<double>() : nullptr, rows, cols, flag_ptr(flag));
  cuda::check_launch(str_cat("softmax_cross_entropy of ", shape_str(logits.shape()), " and ", shape_str(target.shape())));
  if (labels) check_bad_row("softmax_cross_entropy", flag, t, rows, logits.shape());
  return loss;
}

Tensor softmax_cross_entropy_backward(const Tensor& grad_loss, const Tensor& probs, const Tensor& target) {
  const std::int64_t rows = probs.shape()[0], cols = probs.shape()[1];
  Tensor dx = Tensor::empty(probs.shape(), probs.dtype(), probs.device());
  if (rows == 0) return dx;
  const bool labels = target.dtype() == DType::Int64;
  const Tensor g = grad_loss.contiguous(), p = probs.contiguous(), t = target.contiguous();
  Tensor flag = bad_row_flag(rows, probs.device());
  cuda::DeviceGuard guard(probs.device());
  const unsigned blocks = cuda::blocks_for(rows, 1);
  const int threads = threads_for(cols);
  const cudaStream_t stream = cuda::current_stream();
  const std::int64_t* pl = labels ? t.data<std::int64_t>() : nullptr;
  if (probs.dtype() == DType::Float32)
    cross_entropy_backward_kernel<float><<<blocks, threads, 0, stream>>>(
        g.data<float>(), p.data<float>(), labels ? nullptr : t.data<float>(), pl, dx.data<float>(), rows, cols,
        flag_ptr(flag));
  else
    cross_entropy_backward_kernel<double><<<blocks, threads, 0, stream>>>(
        g.data<double>(), p.data<double>(), labels ? nullptr : t.data<double>(), pl, dx.data<double>(), rows, cols,
        flag_ptr(flag));
  cuda::check_launch(str_cat("softmax_cross_entropy_backward of ", shape_str(probs.shape()), " and ",
                             shape_str(target.shape())));
  if (labels) check_bad_row("softmax_cross_entropy_backward", flag, t, rows, probs.shape());
  return dx;
}

}  // namespace petal::cuda_ops
