// Matrix products through cuBLAS: cublasGemmEx for 2-D operands and
// cublasGemmStridedBatchedEx for [B, M, K] @ [B, K, N]. float32 computes in
// FP32 (CUBLAS_COMPUTE_32F) unless TF32 is enabled; float64 in FP64.
//
// petal is row-major and cuBLAS column-major: a row-major [r, c] matrix is
// the column-major [c, r] matrix with the same memory, so C = op(A) op(B)
// is computed as C^T = op(B)^T op(A)^T with the operands swapped.
#include <climits>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace petal::cuda_ops {
namespace {

int checked_int(std::int64_t v, const char* what, const Tensor& a, const Tensor& b) {
  PETAL_CHECK(v <= INT_MAX, ShapeError, "matmul: ", what, " ", v, " exceeds cuBLAS's 32-bit limit (shapes ",
              shape_str(a.shape()), " and ", shape_str(b.shape()), ")");
  return static_cast<int>(v);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const std::int64_t nd = a.dim();
  const std::int64_t a_rows = a.shape()[nd - 2], a_cols = a.shape()[nd - 1];
  const std::int64_t b_rows = b.shape()[nd - 2], b_cols = b.shape()[nd - 1];
  const std::int64_t m = transpose_a ? a_cols : a_rows, k = transpose_a ? a_rows : a_cols;
  const std::int64_t n = transpose_b ? b_rows : b_cols;
  const std::int64_t batch = nd == 3 ? a.shape()[0] : 1;
  Tensor out = Tensor::empty(nd == 3 ? Shape{batch, m, n} : Shape{m, n}, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const std::string what = str_cat("matmul ", shape_str(a.shape()), transpose_a ? "^T" : "", " @ ",
                                   shape_str(b.shape()), transpose_b ? "^T" : "");
  cuda::DeviceGuard guard(a.device());
  if (k == 0) {
    PETAL_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), cuda::current_stream()), what);
    return out;
  }
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  const int im = checked_int(m, "M", a, b), in = checked_int(n, "N", a, b), ik = checked_int(k, "K", a, b);
  const int lda = checked_int(std::max<std::int64_t>(a_cols, 1), "leading dimension", a, b);
  const int ldb = checked_int(std::max<std::int64_t>(b_cols, 1), "leading dimension", a, b);
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const bool f32 = a.dtype() == DType::Float32;
  const cudaDataType_t type = f32 ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      f32 ? (cuda::tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_64F;
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const void* alpha = f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  const void* beta = f32 ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d);
  cublasHandle_t handle = cuda::cublas_handle();
  if (batch == 1) {
    PETAL_CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, in, im, ik, alpha, cb.raw_data(), type, ldb, ca.raw_data(), type,
                                    lda, beta, out.raw_data(), type, in, compute, CUBLAS_GEMM_DEFAULT),
                       what);
  } else {
    PETAL_CUBLAS_CHECK(
        cublasGemmStridedBatchedEx(handle, op_b, op_a, in, im, ik, alpha, cb.raw_data(), type, ldb, b_rows * b_cols,
                                   ca.raw_data(), type, lda, a_rows * a_cols, beta, out.raw_data(), type, in, m * n,
                                   checked_int(batch, "batch", a, b), compute, CUBLAS_GEMM_DEFAULT),
        what);
  }
  return out;
}

}  // namespace petal::cuda_ops
