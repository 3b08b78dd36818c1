// Launch helpers shared by the convolution-family .cu files (nvcc only):
// grid-stride element loops over device lambdas, error messages built only
// on failure, the cuBLAS GEMM on row-major operands, the deterministic
// column reduction of reduce_body.hpp, and device workspaces.
#pragma once

#include <climits>
#include <initializer_list>
#include <utility>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/error.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "kernels/portable/conv_geometry.hpp"
#include "kernels/cuda/conv/batch_norm_body.hpp"
#include "kernels/cuda/conv/gemm_plan.hpp"
#include "kernels/cuda/conv/reduce_body.hpp"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/portable/dispatch.hpp"

namespace petal::cuda_conv {

using kernels::ConvGeometry;
using cuda_body::Sum2;

// "<op> (CUDA, float32): x [1, 8, 8, 3], kernel [3, 3, 3, 32]": what every
// error of an op names.
struct OpName {
  const char* op;
  std::string operands;  // built once per op call, small
};

// "x [1, 8, 8, 3] float32, kernel [3, 3, 3, 32] float32" (undefined tensors skipped).
inline std::string operands(std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  std::string out;
  for (const auto& [label, t] : tensors) {
    if (!t->defined()) continue;
    if (!out.empty()) out += ", ";
    out += str_cat(label, " ", shape_str(t->shape()), " ", dtype_name(t->dtype()));
  }
  return out;
}

// Elements of an im2col workspace (128 MiB of float32): large enough that
// every MobileNetV2 layer at batch 256 runs in a few chunks, small enough to
// leave the device memory to activations.
inline constexpr std::int64_t kIm2colWorkspaceElements = std::int64_t{1} << 25;

inline std::string describe(const OpName& name, const char* stage) {
  return str_cat(name.op, " (CUDA) ", stage, ": ", name.operands);
}

template <class F>
__global__ void for_each_index_kernel(std::int64_t n, F f) {
  const std::int64_t step = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(i);
}

// Calls f(i) on the device for i in [0, n), on the current stream.
template <class F>
void for_each_index(std::int64_t n, F f, const OpName& name, const char* stage) {
  if (n <= 0) return;
  for_each_index_kernel<<<cuda::blocks_for(n), 256, 0, cuda::current_stream()>>>(n, f);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) cuda::throw_cuda_error(describe(name, stage), status);
}

// A device buffer from the caching allocator, freed with the tensor (the
// allocator orders reuse on the stream, so it may go out of scope while
// kernels that use it are still queued).
template <class T>
Tensor workspace(std::int64_t elements, Device device) {
  return Tensor::empty({elements < 1 ? 1 : elements}, std::is_same_v<T, double> ? DType::Float64 : DType::Float32,
                       device);
}

inline int gemm_dim(std::int64_t v, const OpName& name) {
  PETAL_CHECK(v <= INT_MAX, ShapeError, name.op, " (CUDA): GEMM dimension ", v, " exceeds cuBLAS's 32-bit limit (",
              name.operands, ")");
  return static_cast<int>(v);
}

// One cuBLAS call of gemm_plan.hpp: C = op(A) op(B) + beta C, column-major.
// FP32 math by default, TF32 tensor cores when cuda::tf32_enabled(); float64
// in FP64.
template <class T>
void gemm(const cuda_body::GemmCall& call, const T* a, const T* b, T beta, T* c, const OpName& name) {
  const char* stage = "GEMM";
  const bool transpose_a = call.transpose_a, transpose_b = call.transpose_b;
  const std::int64_t m = call.m, n = call.n, k = call.k, lda = call.lda, ldb = call.ldb, ldc = call.ldc;
  const T alpha = T(1);
  constexpr bool is_double = std::is_same_v<T, double>;
  const cudaDataType_t type = is_double ? CUDA_R_64F : CUDA_R_32F;
  const cublasComputeType_t compute =
      is_double ? CUBLAS_COMPUTE_64F : (cuda::tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
  const cublasStatus_t status = cublasGemmEx(
      cuda::cublas_handle(), transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
      gemm_dim(m, name), gemm_dim(n, name), gemm_dim(k, name), &alpha, a, type, gemm_dim(lda, name), b, type,
      gemm_dim(ldb, name), &beta, c, type, gemm_dim(ldc, name), compute, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS) cuda::throw_cublas_error(describe(name, stage), status);
}

template <class Term>
__global__ void column_partials_kernel(Term term, std::int64_t rows, std::int64_t columns,
                                       std::int64_t rows_per_chunk, Sum2* partials) {
  // Plain doubles: a __shared__ Sum2 would need its member initialisers run.
  __shared__ double firsts[cuda_body::kReduceThreadsY][cuda_body::kReduceThreadsX];
  __shared__ double seconds[cuda_body::kReduceThreadsY][cuda_body::kReduceThreadsX];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const std::int64_t column = std::int64_t(blockIdx.x) * cuda_body::kReduceThreadsX + tx;
  const std::int64_t chunk = blockIdx.y;
  const Sum2 lane = column < columns ? cuda_body::reduce_lane(term, rows, rows_per_chunk, chunk, ty, column) : Sum2{};
  firsts[ty][tx] = lane.first;
  seconds[ty][tx] = lane.second;
  __syncthreads();
  if (ty == 0 && column < columns) {
    Sum2 block;
    for (int l = 0; l < cuda_body::kReduceThreadsY; ++l) block = block + Sum2{firsts[l][tx], seconds[l][tx]};
    partials[chunk * columns + column] = block;
  }
}

template <class S>
__global__ void column_finish_kernel(const S* partials, std::int64_t chunks, std::int64_t columns, S* out) {
  const std::int64_t column = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (column >= columns) return;
  S sum;
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) sum = sum + partials[chunk * columns + column];
  out[column] = sum;
}

// Per-column sums of term(row, column) over rows, in the fixed order of
// reduce_body.hpp. The sums live in `storage` (keep it while they are used).
struct ColumnSums {
  Tensor storage;
  const Sum2* sums = nullptr;
};

template <class Term>
ColumnSums column_reduce(const Term& term, std::int64_t rows, std::int64_t columns, Device device,
                         const OpName& name, const char* stage) {
  const cuda_body::ReducePlan plan = cuda_body::make_reduce_plan(rows, columns);
  static_assert(sizeof(Sum2) == 2 * sizeof(double));
  ColumnSums out;
  out.storage = workspace<double>(2 * (plan.chunks + 1) * columns, device);
  Sum2* partials = reinterpret_cast<Sum2*>(out.storage.data<double>());
  Sum2* sums = partials + plan.chunks * columns;
  const dim3 block(cuda_body::kReduceThreadsX, cuda_body::kReduceThreadsY);
  const dim3 grid(static_cast<unsigned>(plan.column_blocks()), static_cast<unsigned>(plan.chunks));
  column_partials_kernel<<<grid, block, 0, cuda::current_stream()>>>(term, rows, columns, plan.rows_per_chunk,
                                                                       partials);
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) cuda::throw_cuda_error(describe(name, stage), status);
  column_finish_kernel<<<static_cast<unsigned>((columns + 255) / 256), 256, 0, cuda::current_stream()>>>(
      partials, plan.chunks, columns, sums);
  status = cudaGetLastError();
  if (status != cudaSuccess) cuda::throw_cuda_error(describe(name, stage), status);
  out.sums = sums;
  return out;
}

template <class S, class T>
__global__ void sums_to_values_kernel(const S* sums, std::int64_t columns, T* out) {
  const std::int64_t column = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (column < columns) out[column] = T(sums[column].first);
}

// out[c] = sum over rows of x[r, c] (bias gradients), deterministic.
template <class T>
void channel_sums(const T* x, std::int64_t rows, std::int64_t columns, T* out, Device device, const OpName& name) {
  const ColumnSums sums =
      column_reduce(cuda_body::ChannelSumTerm<T>{x, columns}, rows, columns, device, name, "channel sums");
  sums_to_values_kernel<<<static_cast<unsigned>((columns + 255) / 256), 256, 0, cuda::current_stream()>>>(
      sums.sums, columns, out);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) cuda::throw_cuda_error(describe(name, "channel sums"), status);
}

// Runs fn(float{}) or fn(double{}) by the dtype (the ops layer has checked it).
using kernels::dispatch_floating;

// Calls launch(geometry) with the 32-bit geometry when every index of g fits
// (cuda_body::fits_32bit), else with g itself: the launches are templates
// over the geometry type, and 32-bit index arithmetic is several times
// cheaper on the GPU.
template <class Launch>
void with_index_geometry(const ConvGeometry& g, Launch&& launch) {
  if (cuda_body::fits_32bit(g)) {
    launch(cuda_body::narrow(g));
  } else {
    launch(g);
  }
}

// y[o] = the bias/ReLU6 epilogue of element(o), for each of the `total`
// output elements o (flat NHWC index in the geometry's index type); element
// is a __device__ lambda computing the convolution's sum.
template <class T, class G, class Element>
void launch_output_with_epilogue(T* y, const T* bias, const G& g, bool relu6, std::int64_t total, Element element,
                                 const OpName& name, const char* stage) {
  using I = cuda_body::IndexOf<G>;
  const I out_c = g.out_c;
  for_each_index(
      total,
      [=] __device__(std::int64_t i) {
        const I o = I(i);
        y[o] = cuda_body::conv_epilogue(element(o), bias, o % out_c, relu6);
      },
      name, stage);
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace petal::cuda_conv
