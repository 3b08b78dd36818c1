// Plain loops: sgemm_reference (the oracle every optimised path is tested
// against) and dgemm (float64, used by gradient checks, where clarity beats
// speed).
#include <cstdint>

#include "kernels/cpu/gemm/reference_gemm.hpp"

namespace petal::cpu {
namespace {

// C = alpha * op(A) op(B) + beta * C, accumulating each dot product in T.
// Loop order i-p-j keeps the inner loop contiguous over C's row when B is not
// transposed, which is enough for a reference and for float64 gradient checks.
template <class T>
void gemm_loops(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    T* c_row = c + i * ldc;
    // beta == 0 must not read C: it may hold NaN or uninitialised memory.
    if (beta == T(0)) {
      for (std::int64_t j = 0; j < n; ++j) c_row[j] = T(0);
    } else if (beta != T(1)) {
      for (std::int64_t j = 0; j < n; ++j) c_row[j] *= beta;
    }
    if (alpha == T(0)) continue;
    for (std::int64_t p = 0; p < k; ++p) {
      const T a_ip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
      if (trans_b) {
        for (std::int64_t j = 0; j < n; ++j) c_row[j] += a_ip * b[j * ldb + p];
      } else {
        const T* b_row = b + p * ldb;
        for (std::int64_t j = 0; j < n; ++j) c_row[j] += a_ip * b_row[j];
      }
    }
  }
}

}  // namespace

void sgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                     const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                     std::int64_t ldc) {
  gemm_loops<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
           std::int64_t ldc) {
  gemm_loops<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace petal::cpu
