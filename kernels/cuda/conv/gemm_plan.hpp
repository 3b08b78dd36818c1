// The cuBLAS calls of the Conv2D GEMMs, as data: column-major BLAS
// C (m x n, ldc) = op(A) op(B) + beta C. The row-major products of
// conv_body.hpp are issued as C^T = B^T A^T on the same memory (a row-major
// [r, c] matrix is a column-major [c, r] one with leading dimension c).
// tests/kernels/test_cuda_conv_bodies.cpp runs these plans through a plain
// column-major GEMM on the CPU, so the operand order and transposes are
// tested without cuBLAS.
#pragma once

#include <cstdint>

namespace petal::cuda_body {

struct GemmCall {
  bool transpose_a = false, transpose_b = false;
  std::int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  // A is the first operand named by each plan below, B the second.
};

// y [P, Cout] = col [P, K] x W [K, Cout]:  A = W, B = col, C = y.
inline GemmCall forward_gemm(std::int64_t pixels, std::int64_t k, std::int64_t out_c) {
  return {false, false, out_c, pixels, k, out_c, k, out_c};
}

// dcol [P, K] = dy [P, Cout] x W^T:  A = W, B = dy, C = dcol.
inline GemmCall backward_input_gemm(std::int64_t pixels, std::int64_t k, std::int64_t out_c) {
  return {true, false, k, pixels, out_c, out_c, out_c, k};
}

// dW [K, Cout] (+)= col^T [K, P] x dy [P, Cout]:  A = dy, B = col, C = dW.
inline GemmCall backward_kernel_gemm(std::int64_t pixels, std::int64_t k, std::int64_t out_c) {
  return {false, true, out_c, k, pixels, out_c, k, out_c};
}

}  // namespace petal::cuda_body
