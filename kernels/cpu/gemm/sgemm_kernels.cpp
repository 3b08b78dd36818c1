// Packing and the register-tiled micro-kernel of sgemm, written once against
// Vec<float> and compiled per ISA (see sgemm_kernels.hpp for the layouts).
#include "kernels/cpu/gemm/sgemm_kernels.hpp"

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/gemm/gemm_simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using namespace gemm;

constexpr std::int64_t kL = static_cast<std::int64_t>(kLanes);

// Register tile: MR rows of C by NV vectors. Accumulators MR * NV plus NV
// loads of B and one broadcast of A must fit the register file
// (AVX-512: 32 zmm, AVX2: 16 ymm).
#if defined(PETAL_ISA_AVX512)
constexpr int kMr = 14, kNv = 2;
constexpr std::int64_t kMc = 14 * 24, kKc = 256, kNc = 4096;
#elif defined(PETAL_ISA_AVX2)
constexpr int kMr = 6, kNv = 2;
constexpr std::int64_t kMc = 6 * 24, kKc = 256, kNc = 4096;
#else
constexpr int kMr = 4, kNv = 4;
constexpr std::int64_t kMc = 4 * 32, kKc = 256, kNc = 1024;
#endif
constexpr std::int64_t kNr = kNv * kL;

using V = VecF;

// acc = A panel (kc x MR) times B panel (kc x NR), both packed.
#define PETAL_UNROLL _Pragma("GCC unroll 32")

struct Tile {
  V acc[kMr][kNv];
};

inline void multiply_panels(std::int64_t kc, const float* __restrict a, const float* __restrict b, Tile& t) {
  PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
    PETAL_UNROLL for (int v = 0; v < kNv; ++v) t.acc[r][v] = broadcast(0.0f);
  }
  for (std::int64_t p = 0; p < kc; ++p) {
    V bv[kNv];
    PETAL_UNROLL for (int v = 0; v < kNv; ++v) bv[v] = load(b + v * kL);
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      const V ar = broadcast(a[r]);
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) t.acc[r][v] = fma(ar, bv[v], t.acc[r][v]);
    }
    a += kMr;
    b += kNr;
  }
}

// Writes a whole tile: C = acc + beta * C.
inline void store_full_tile(const Tile& t, float* c, std::int64_t ldc, float beta) {
  if (beta == 0.0f) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) store(c + r * ldc + v * kL, t.acc[r][v]);
    }
  } else if (beta == 1.0f) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
        float* p = c + r * ldc + v * kL;
        store(p, load(p) + t.acc[r][v]);
      }
    }
  } else {
    const V vb = broadcast(beta);
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
        float* p = c + r * ldc + v * kL;
        store(p, fma(vb, load(p), t.acc[r][v]));
      }
    }
  }
}

// Writes the valid rows x cols corner of a tile (edges of C).
inline void store_partial_tile(const Tile& t, float* c, std::int64_t ldc, float beta, std::int64_t rows,
                               std::int64_t cols) {
  alignas(64) float buf[kMr * kNr];
  PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
    PETAL_UNROLL for (int v = 0; v < kNv; ++v) store(buf + r * kNr + v * kL, t.acc[r][v]);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* src = buf + r * kNr;
    float* dst = c + r * ldc;
    std::int64_t j = 0;
    if (beta == 0.0f) {
      for (; j + kL <= cols; j += kL) store(dst + j, load(src + j));
      for (; j < cols; ++j) dst[j] = src[j];
    } else {
      const V vb = broadcast(beta);
      for (; j + kL <= cols; j += kL) store(dst + j, fma(vb, load(dst + j), load(src + j)));
      for (; j < cols; ++j) dst[j] = src[j] + beta * dst[j];
    }
  }
}

void macro_kernel(std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* packed_a, const float* packed_b,
                  float* c, std::int64_t ldc, float beta) {
  // B micro-panel outer so it stays in L1 while A's panels stream from L2.
  for (std::int64_t j = 0; j < nc; j += kNr) {
    const float* b_panel = packed_b + (j / kNr) * kc * kNr;
    const std::int64_t cols = std::min(kNr, nc - j);
    for (std::int64_t i = 0; i < mc; i += kMr) {
      const float* a_panel = packed_a + (i / kMr) * kc * kMr;
      const std::int64_t rows = std::min<std::int64_t>(kMr, mc - i);
      Tile t;
      multiply_panels(kc, a_panel, b_panel, t);
      float* c_tile = c + i * ldc + j;
      if (rows == kMr && cols == kNr) {
        store_full_tile(t, c_tile, ldc, beta);
      } else {
        store_partial_tile(t, c_tile, ldc, beta, rows, cols);
      }
    }
  }
}

void pack_a(bool trans_a, const float* a, std::int64_t lda, std::int64_t mc, std::int64_t kc, float* packed) {
  for (std::int64_t i0 = 0; i0 < mc; i0 += kMr) {
    const std::int64_t rows = std::min<std::int64_t>(kMr, mc - i0);
    float* panel = packed + (i0 / kMr) * kc * kMr;
    if (trans_a) {
      // A(i, p) = a[p * lda + i]: each k step copies rows contiguous values.
      for (std::int64_t p = 0; p < kc; ++p) {
        const float* src = a + p * lda + i0;
        float* dst = panel + p * kMr;
        std::int64_t r = 0;
        for (; r < rows; ++r) dst[r] = src[r];
        for (; r < kMr; ++r) dst[r] = 0.0f;
      }
    } else {
      // A(i, p) = a[i * lda + p]: read each row contiguously, write strided.
      for (std::int64_t r = 0; r < kMr; ++r) {
        if (r < rows) {
          const float* src = a + (i0 + r) * lda;
          for (std::int64_t p = 0; p < kc; ++p) panel[p * kMr + r] = src[p];
        } else {
          for (std::int64_t p = 0; p < kc; ++p) panel[p * kMr + r] = 0.0f;
        }
      }
    }
  }
}

void pack_b(bool trans_b, const float* b, std::int64_t ldb, std::int64_t kc, std::int64_t nc, float alpha,
            float* packed) {
  const V va = broadcast(alpha);
  for (std::int64_t j0 = 0; j0 < nc; j0 += kNr) {
    const std::int64_t cols = std::min(kNr, nc - j0);
    float* panel = packed + (j0 / kNr) * kc * kNr;
    if (!trans_b) {
      for (std::int64_t p = 0; p < kc; ++p) {
        const float* src = b + p * ldb + j0;
        float* dst = panel + p * kNr;
        if (cols == kNr) {
          PETAL_UNROLL for (int v = 0; v < kNv; ++v) store(dst + v * kL, va * load(src + v * kL));
        } else {
          std::int64_t j = 0;
          for (; j < cols; ++j) dst[j] = alpha * src[j];
          for (; j < kNr; ++j) dst[j] = 0.0f;
        }
      }
    } else {
      // B(p, j) = b[j * ldb + p]: read each column of op(B) contiguously.
      for (std::int64_t j = 0; j < kNr; ++j) {
        if (j < cols) {
          const float* src = b + (j0 + j) * ldb;
          for (std::int64_t p = 0; p < kc; ++p) panel[p * kNr + j] = alpha * src[p];
        } else {
          for (std::int64_t p = 0; p < kc; ++p) panel[p * kNr + j] = 0.0f;
        }
      }
    }
  }
}

}  // namespace

extern const SgemmKernels sgemm_kernels;
const SgemmKernels sgemm_kernels = {kMr, kNr, kMc, kKc, kNc, pack_a, pack_b, macro_kernel};

}  // namespace petal::cpu::PETAL_ISA_NS
