// Single-precision GEMM on the CPU, row-major:
//   C[M, N] = alpha * op(A)[M, K] @ op(B)[K, N] + beta * C
// op(A) = A (M x K, leading dimension lda) or A^T (A stored K x M) when
// trans_a; likewise B. beta == 0 overwrites C without reading it (C may hold
// NaN); such a C of 32 MiB or more (the L3 cache) is written past the caches,
// as sgemm_stream_c does. Multithreaded over the pool (serial inside a parallel region) and
// dispatched by the active ISA. This is the hot path of Dense and of 1x1
// convolutions. A B (not transposed, alpha 1) that lies in memory declared
// constant (constant_operands.hpp) is packed once and read packed after.
// The plain loops with the same contract (sgemm_reference, dgemm) are in
// reference_gemm.hpp.
#pragma once

#include <cstdint>

namespace petal::cpu {

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);

// sgemm with beta = 0 that writes C with non-temporal stores, past the
// caches: for a C far larger than the caches that is not read back at once
// (it saves the read-for-ownership of every line of C).
void sgemm_stream_c(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                    const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float* c, std::int64_t ldc);

// A per-column map applied to C after the product (in the same pass over C):
// C[i, j] = act(C[i, j] * scale[j] + shift[j]), scale and shift of n
// floats (null: 1 and 0), act ReLU6 (min(max(x, 0), 6)) or none. A 1x1
// convolution's bias or folded batch norm and its activation.
struct GemmEpilogue {
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool relu6 = false;
};

// sgemm, then the epilogue on every element of C; with stream_c (beta must
// be 0) C is written past the caches, as sgemm_stream_c does.
void sgemm_epilogue(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                    const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                    std::int64_t ldc, const GemmEpilogue& epilogue, bool stream_c = false);

}  // namespace petal::cpu
