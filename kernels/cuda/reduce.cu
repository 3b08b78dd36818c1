// CUDA reductions: sum and max over any set of axes of a strided input,
// argmax along one axis, and the double-precision sum of squares. Outputs
// are in the keepdim shape's C order; each output is reduced in a fixed
// order, so results do not change from run to run.
#include <algorithm>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce_body.hpp"
#include "kernels/cuda/strided_index.hpp"
#include "kernels/portable/dispatch.hpp"
#include "kernels/portable/reduce_ops.hpp"

namespace petal::cuda_ops {
namespace {

using cuda::StridedIndexer;
using kernels::ReduceOp;

// Below this many elements per output, one thread reduces one output.
constexpr std::int64_t kThreadPerOutputBelow = 64;
constexpr int kThreads = 256;

template <class T, ReduceOp kOp>
using Acc = typename cuda::ReduceAcc<T, kOp>::type;

template <class T, ReduceOp kOp>
__global__ void reduce_block_per_output(const T* in, T* out, StridedIndexer<1> outer, std::int64_t n_out,
                                        StridedIndexer<1> inner, std::int64_t n_inner) {
  for (std::int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    std::int64_t base[1];
    outer.offsets(o, base);
    Acc<T, kOp> acc = cuda::reduce_fold<kOp>(kernels::reduce_identity<kOp, Acc<T, kOp>>(), in, base[0], inner,
                                      threadIdx.x, n_inner, blockDim.x);
    acc = cuda::block_combine<kOp>(acc);
    if (threadIdx.x == 0) out[o] = static_cast<T>(acc);
  }
}

template <class T, ReduceOp kOp>
__global__ void reduce_thread_per_output(const T* in, T* out, StridedIndexer<1> outer, std::int64_t n_out,
                                         StridedIndexer<1> inner, std::int64_t n_inner) {
  PETAL_GRID_STRIDE_LOOP(o, n_out) {
    std::int64_t base[1];
    outer.offsets(o, base);
    out[o] = static_cast<T>(cuda::reduce_fold<kOp>(kernels::reduce_identity<kOp, Acc<T, kOp>>(), in, base[0], inner, 0,
                                            n_inner, 1));
  }
}

// Column scheme (see ReducePlan): x = output, y = chunk of j.
template <class T, ReduceOp kOp>
__global__ void reduce_column_partials(const T* in, Acc<T, kOp>* partial, StridedIndexer<1> outer, std::int64_t n_out,
                                       StridedIndexer<1> inner, std::int64_t n_inner, std::int64_t chunks,
                                       std::int64_t chunk_len) {
  const std::int64_t o = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x;
  if (o >= n_out) return;
  std::int64_t base[1];
  outer.offsets(o, base);
  for (std::int64_t c = blockIdx.y * std::int64_t{blockDim.y} + threadIdx.y; c < chunks;
       c += std::int64_t{gridDim.y} * blockDim.y) {
    const std::int64_t end = c * chunk_len + chunk_len < n_inner ? c * chunk_len + chunk_len : n_inner;
    partial[c * n_out + o] =
        cuda::reduce_fold<kOp>(kernels::reduce_identity<kOp, Acc<T, kOp>>(), in, base[0], inner, c * chunk_len, end, 1);
  }
}

// Split scheme (see ReducePlan): block (x = chunk, y = output).
template <class T, ReduceOp kOp>
__global__ void reduce_split_partials(const T* in, Acc<T, kOp>* partial, StridedIndexer<1> outer, std::int64_t n_out,
                                      StridedIndexer<1> inner, std::int64_t n_inner, std::int64_t split_len) {
  const std::int64_t c = blockIdx.x;
  for (std::int64_t o = blockIdx.y; o < n_out; o += gridDim.y) {
    std::int64_t base[1];
    outer.offsets(o, base);
    const std::int64_t begin = c * split_len, end = begin + split_len < n_inner ? begin + split_len : n_inner;
    Acc<T, kOp> acc = cuda::reduce_fold<kOp>(kernels::reduce_identity<kOp, Acc<T, kOp>>(), in, base[0], inner,
                                      begin + threadIdx.x, end, blockDim.x);
    acc = cuda::block_combine<kOp>(acc);
    if (threadIdx.x == 0) partial[c * n_out + o] = acc;
  }
}

template <class T, ReduceOp kOp>
__global__ void reduce_column_finish(const Acc<T, kOp>* partial, T* out, std::int64_t n_out, std::int64_t chunks) {
  PETAL_GRID_STRIDE_LOOP(o, n_out) {
    Acc<T, kOp> acc = kernels::reduce_identity<kOp, Acc<T, kOp>>();
    for (std::int64_t c = 0; c < chunks; ++c) acc = kernels::reduce_combine<kOp>(acc, partial[c * n_out + o]);
    out[o] = static_cast<T>(acc);
  }
}

template <class T, ReduceOp kOp>
void reduce_typed(const Tensor& a, const std::vector<bool>& flags, Tensor& out) {
  const cuda::ReducePlan plan = cuda::make_reduce_plan(a.shape(), a.strides(), flags);
  const StridedIndexer<1>& outer = plan.outer;
  const StridedIndexer<1>& inner = plan.inner;
  const std::int64_t n_out = plan.n_out, n_inner = plan.n_inner;
  cuda::DeviceGuard guard(a.device());
  const cudaStream_t stream = cuda::current_stream();
  const T* in = static_cast<const T*>(a.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  if (plan.chunks > 0) {
    Tensor scratch = Tensor::empty({plan.chunks * n_out}, dtype_of_v<Acc<T, kOp>>, a.device());
    const dim3 threads(32, 8);
    const dim3 grid(static_cast<unsigned>((n_out + 31) / 32),
                    static_cast<unsigned>(std::min<std::int64_t>((plan.chunks + 7) / 8, 65535)));
    reduce_column_partials<T, kOp><<<grid, threads, 0, stream>>>(in, scratch.data<Acc<T, kOp>>(), outer, n_out, inner,
                                                                 n_inner, plan.chunks, plan.chunk_len);
    reduce_column_finish<T, kOp><<<cuda::blocks_for(n_out, kThreads), kThreads, 0, stream>>>(
        scratch.data<Acc<T, kOp>>(), po, n_out, plan.chunks);
  } else if (plan.split_chunks > 0) {
    Tensor scratch = Tensor::empty({plan.split_chunks * n_out}, dtype_of_v<Acc<T, kOp>>, a.device());
    const dim3 grid(static_cast<unsigned>(plan.split_chunks), static_cast<unsigned>(std::min<std::int64_t>(n_out, 65535)));
    reduce_split_partials<T, kOp><<<grid, kThreads, 0, stream>>>(in, scratch.data<Acc<T, kOp>>(), outer, n_out, inner,
                                                                  n_inner, plan.split_len);
    reduce_column_finish<T, kOp><<<cuda::blocks_for(n_out, kThreads), kThreads, 0, stream>>>(
        scratch.data<Acc<T, kOp>>(), po, n_out, plan.split_chunks);
  } else if (n_inner < kThreadPerOutputBelow)
    reduce_thread_per_output<T, kOp><<<cuda::blocks_for(n_out, kThreads), kThreads, 0, stream>>>(in, po, outer, n_out,
                                                                                                 inner, n_inner);
  else
    reduce_block_per_output<T, kOp><<<cuda::blocks_for(n_out, 1), kThreads, 0, stream>>>(in, po, outer, n_out,
                                                                                        inner, n_inner);
  cuda::check_launch(str_cat(kOp == ReduceOp::Max ? "max" : "sum", " of ", shape_str(a.shape())));
}

template <class T>
__global__ void argmax_kernel(const T* in, std::int64_t* out, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  PETAL_GRID_STRIDE_LOOP(o, outer * inner) {
    const T* base = in + (o / inner) * n * inner + o % inner;
    T best = base[0];
    std::int64_t index = 0;
    for (std::int64_t j = 0; j < n; ++j) kernels::argmax_step(best, index, base[j * inner], j);
    out[o] = index;
  }
}

// Per-block partial sums of squares, then one block adds the partials.
template <class T>
__global__ void squares_partial(const T* in, std::int64_t n, double* partial) {
  double acc = 0;
  PETAL_GRID_STRIDE_LOOP(i, n) {
    const double v = static_cast<double>(in[i]);
    acc += v * v;
  }
  acc = cuda::block_combine<ReduceOp::Sum>(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials(const double* partial, int n, double* out) {
  double acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = cuda::block_combine<ReduceOp::Sum>(acc);
  if (threadIdx.x == 0) *out = acc;
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& a, const std::vector<bool>& reduced_axes) {
  Shape keep_shape = a.shape();
  for (std::int64_t d = 0; d < a.dim(); ++d)
    if (reduced_axes[d]) keep_shape[d] = 1;
  Tensor out = Tensor::empty(keep_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  kernels::dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (op == ReduceOp::Max)
      reduce_typed<T, ReduceOp::Max>(a, reduced_axes, out);
    else
      reduce_typed<T, ReduceOp::Sum>(a, reduced_axes, out);
  });
  return out;
}

Tensor argmax(const Tensor& a, std::int64_t axis) {
  Shape out_shape = a.shape();
  out_shape.erase(out_shape.begin() + axis);
  Tensor out = Tensor::empty(out_shape, DType::Int64, a.device());
  if (out.numel() == 0) return out;
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t i = 0; i < axis; ++i) outer *= a.shape()[i];
  for (std::int64_t i = axis + 1; i < a.dim(); ++i) inner *= a.shape()[i];
  const Tensor c = a.contiguous();
  cuda::DeviceGuard guard(a.device());
  const cudaStream_t stream = cuda::current_stream();
  const unsigned blocks = cuda::blocks_for(outer * inner, kThreads);
  kernels::dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    argmax_kernel<<<blocks, kThreads, 0, stream>>>(c.data<T>(), out.data<std::int64_t>(), outer, a.shape()[axis],
                                                   inner);
  });
  cuda::check_launch(str_cat("argmax of ", shape_str(a.shape()), " along axis ", axis));
  return out;
}

double squared_norm(const Tensor& a) {
  const std::int64_t n = a.numel();
  if (n == 0) return 0.0;
  const Tensor c = a.contiguous();
  constexpr int kMaxPartials = 1024;
  const int blocks = static_cast<int>(std::min<std::int64_t>(cuda::blocks_for(n, kThreads), kMaxPartials));
  Tensor scratch = Tensor::empty({blocks + 1}, DType::Float64, a.device());
  double* partial = scratch.data<double>();
  cuda::DeviceGuard guard(a.device());
  const cudaStream_t stream = cuda::current_stream();
  kernels::dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    squares_partial<<<blocks, kThreads, 0, stream>>>(c.data<T>(), n, partial);
  });
  sum_partials<<<1, kThreads, 0, stream>>>(partial, blocks, partial + blocks);
  cuda::check_launch(str_cat("squared_norm of ", shape_str(a.shape())));
  return scratch.slice(0, blocks, blocks + 1).item<double>();
}

}  // namespace petal::cuda_ops
