// sgemm entry point. First version: parallel over rows of C with the plain
// loops; the packed, blocked micro-kernel replaces it.
#include <cstdint>

#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm.hpp"

namespace petal::cpu {

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const std::int64_t work_per_row = n * (k > 0 ? k : 1);
  const std::int64_t grain = work_per_row >= (1 << 16) ? 1 : (1 << 16) / work_per_row;
  parallel_for(0, m, grain, [&](std::int64_t row_begin, std::int64_t row_end) {
    const float* a_block = trans_a ? a + row_begin : a + row_begin * lda;
    sgemm_reference(trans_a, trans_b, row_end - row_begin, n, k, alpha, a_block, lda, b, ldb, beta,
                    c + row_begin * ldc, ldc);
  });
}

}  // namespace petal::cpu
