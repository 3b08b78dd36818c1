// sgemm driver: Goto/BLIS-style cache blocking around the per-ISA packing
// and micro-kernels of sgemm_kernels.cpp.
//
//   for each nc-wide column block of B            (packed B block lives in L3)
//     for each kc-deep slice of K                 (B micro-panel kc x nr in L1)
//       pack B[kc, nc] once, shared by all threads
//       threads split the rows of C (or, for short M, the columns);
//       each packs its mc x kc blocks of A (L2) and runs the macro-kernel.
//
// Small problems skip the thread pool; calls from inside a parallel region
// run serially on the calling thread.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/gemm/sgemm_kernels.hpp"
#include "kernels/cpu/isa.hpp"

namespace petal::cpu {
namespace {

// Below this many multiply-adds, waking the pool costs more than it saves.
constexpr std::int64_t kParallelMinMacs = std::int64_t{1} << 18;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// A growable 64-byte aligned scratch buffer; one per thread and role, kept
// across calls so steady-state sgemm allocates nothing.
class PackBuffer {
 public:
  float* get(std::int64_t floats) {
    const std::size_t bytes = static_cast<std::size_t>(floats) * sizeof(float);
    if (bytes > capacity_) {
      const std::size_t rounded = (bytes + 4095) / 4096 * 4096;
      void* p = std::aligned_alloc(64, rounded);
      if (p == nullptr) throw std::bad_alloc();
      data_.reset(static_cast<float*>(p));
      capacity_ = rounded;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t capacity_ = 0;
};

float* packed_a_buffer(std::int64_t floats) {
  thread_local PackBuffer buffer;
  return buffer.get(floats);
}

float* packed_b_buffer(std::int64_t floats) {
  thread_local PackBuffer buffer;
  return buffer.get(floats);
}

// C = beta * C over an m x n window (alpha == 0 or k == 0).
void scale_c(std::int64_t m, std::int64_t n, float beta, float* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else if (beta != 1.0f) {
      for (std::int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

struct Operands {
  bool trans_a, trans_b;
  const float* a;
  std::int64_t lda;
  const float* b;
  std::int64_t ldb;
  float alpha;
  float* c;
  std::int64_t ldc;

  const float* a_at(std::int64_t i, std::int64_t p) const { return trans_a ? a + p * lda + i : a + i * lda + p; }
  const float* b_at(std::int64_t p, std::int64_t j) const { return trans_b ? b + j * ldb + p : b + p * ldb + j; }
};

// Packs the B panels [panel_begin, panel_end) of the kc x nc block at (pc, jc).
void pack_b_panels(const SgemmKernels& kern, const Operands& op, std::int64_t pc, std::int64_t kc, std::int64_t jc,
                   std::int64_t nc, std::int64_t panel_begin, std::int64_t panel_end, float* packed_b) {
  const std::int64_t col_begin = panel_begin * kern.nr;
  const std::int64_t col_end = std::min(panel_end * kern.nr, nc);
  kern.pack_b(op.trans_b, op.b_at(pc, jc + col_begin), op.ldb, kc, col_end - col_begin, op.alpha,
              packed_b + panel_begin * kc * kern.nr);
}

// Rows [row_begin, row_end) x columns [col_begin, col_end) of the current
// column block against the packed B slice; packs A block by block.
void compute_block(const SgemmKernels& kern, const Operands& op, std::int64_t pc, std::int64_t kc, std::int64_t jc,
                   std::int64_t row_begin, std::int64_t row_end, std::int64_t col_begin, std::int64_t col_end,
                   const float* packed_b, float beta) {
  float* packed_a = packed_a_buffer(ceil_div(std::min(kern.mc, row_end - row_begin), kern.mr) * kern.mr * kc);
  const float* b_slice = packed_b + (col_begin / kern.nr) * kc * kern.nr;
  for (std::int64_t ic = row_begin; ic < row_end; ic += kern.mc) {
    const std::int64_t mc = std::min(kern.mc, row_end - ic);
    kern.pack_a(op.trans_a, op.a_at(ic, pc), op.lda, mc, kc, packed_a);
    kern.macro_kernel(mc, col_end - col_begin, kc, packed_a, b_slice, op.c + ic * op.ldc + jc + col_begin, op.ldc,
                      beta);
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const SgemmKernels& kern = select_table(isa_scalar::sgemm_kernels, isa_avx2::sgemm_kernels,
                                          isa_avx512::sgemm_kernels);
  const Operands op{trans_a, trans_b, a, lda, b, ldb, alpha, c, ldc};
  const bool serial = in_parallel_region() || num_threads() == 1 || m * n * k < kParallelMinMacs;
  const std::int64_t threads = serial ? 1 : num_threads();
  const std::int64_t m_tiles = ceil_div(m, kern.mr);

  for (std::int64_t jc = 0; jc < n; jc += kern.nc) {
    const std::int64_t nc = std::min(kern.nc, n - jc);
    const std::int64_t n_panels = ceil_div(nc, kern.nr);
    for (std::int64_t pc = 0; pc < k; pc += kern.kc) {
      const std::int64_t kc = std::min(kern.kc, k - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;  // later K slices accumulate
      float* packed_b = packed_b_buffer(n_panels * kern.nr * kc);

      // Pack B in parallel only when it is big enough to be worth a wake-up.
      const std::int64_t pack_grain = serial ? n_panels : std::max<std::int64_t>(1, (1 << 16) / (kc * kern.nr));
      parallel_for(0, n_panels, pack_grain, [&](std::int64_t p0, std::int64_t p1) {
        pack_b_panels(kern, op, pc, kc, jc, nc, p0, p1, packed_b);
      });

      if (threads == 1) {
        compute_block(kern, op, pc, kc, jc, 0, m, 0, nc, packed_b, beta_here);
      } else if (m_tiles >= 2 * threads || n_panels < threads) {
        // Split rows: each thread gets whole register tiles of C.
        parallel_for(0, m_tiles, 1, [&](std::int64_t t0, std::int64_t t1) {
          compute_block(kern, op, pc, kc, jc, t0 * kern.mr, std::min(t1 * kern.mr, m), 0, nc, packed_b, beta_here);
        });
      } else {
        // Short and wide: split columns; each thread packs the (small) A itself.
        parallel_for(0, n_panels, 1, [&](std::int64_t p0, std::int64_t p1) {
          compute_block(kern, op, pc, kc, jc, 0, m, p0 * kern.nr, std::min(p1 * kern.nr, nc), packed_b, beta_here);
        });
      }
    }
  }
}

}  // namespace petal::cpu
