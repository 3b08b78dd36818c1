// Reductions across a thread block (nvcc only): warp shuffles, then one
// value per warp through shared memory. Every thread gets the result.
#pragma once

#include <cuda_runtime.h>

#include "kernels/portable/reduce_ops.hpp"

namespace petal::cuda {

template <class T, class Combine>
__device__ T warp_reduce(T v, Combine combine) {
  for (int offset = 16; offset > 0; offset /= 2) v = combine(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

// blockDim.x must be a multiple of 32 (at most 1024). Safe to call several
// times in a row in one kernel.
template <class T, class Combine>
__device__ T block_reduce(T v, Combine combine, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_reduce(v, combine);
  __syncthreads();  // an earlier call may still be reading partial
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = threadIdx.x < warps ? partial[threadIdx.x] : identity;
  if (warp == 0) v = warp_reduce(v, combine);
  if (threadIdx.x == 0) partial[0] = v;
  __syncthreads();
  return partial[0];
}

// The combine step of kernels/portable/reduce_ops.hpp as a functor (max
// skips NaN like the CPU kernels).
template <kernels::ReduceOp kOp>
struct CombineOp {
  template <class T> __device__ T operator()(T a, T b) const { return kernels::reduce_combine<kOp>(a, b); }
};

// block_reduce with the op's combine step and identity.
template <kernels::ReduceOp kOp, class T>
__device__ T block_combine(T v) {
  return block_reduce(v, CombineOp<kOp>{}, kernels::reduce_identity<kOp, T>());
}

}  // namespace petal::cuda
