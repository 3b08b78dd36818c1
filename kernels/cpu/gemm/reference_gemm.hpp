// The plain GEMM loops (reference_gemm.cpp), with sgemm's contract
// (sgemm.hpp): row-major C[M, N] = alpha * op(A) @ op(B) + beta * C, beta == 0
// overwriting C without reading it.
#pragma once

#include <cstdint>

namespace petal::cpu {

// float64 (gradient checks; simple loops, where clarity beats speed).
void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
           std::int64_t ldc);

// The plain triple loop every optimised GEMM is tested against.
void sgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                     const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                     std::int64_t ldc);

}  // namespace petal::cpu
