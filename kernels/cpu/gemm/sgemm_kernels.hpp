// The per-ISA half of sgemm: packing routines and the macro-kernel that
// walks register tiles over one packed block. Each ISA's copy lives in
// petal::cpu::isa_*::sgemm_kernels (sgemm_kernels.cpp, compiled three times);
// the driver in sgemm.cpp does the cache blocking and threading around it.
//
// Packed layouts (zero-padded to whole tiles, so the micro-kernel never
// branches on edges inside its K loop):
//   A block mc x kc -> ceil(mc / mr) panels, panel[p * mr + r] = A(i0 + r, k0 + p)
//   B block kc x nc -> ceil(nc / nr) panels, panel[p * nr + j] = alpha * B(k0 + p, j0 + j)
#pragma once

#include <cstdint>

namespace petal::cpu {

// How a macro-kernel writes C: C = acc + beta * C (beta 0: C is not read),
// then, with an epilogue (scale, shift or relu6), C = act(C * scale[j] +
// shift[j]) per column j. stream writes whole tiles with non-temporal
// stores (call stream_fence before another thread reads C). scale and shift
// point at the first column of the call's C window (null: 1 and 0).
struct CStore {
  float beta = 0.0f;
  bool stream = false;
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool relu6 = false;
  bool has_epilogue() const { return scale != nullptr || shift != nullptr || relu6; }
  // The same store for the window starting `columns` further right.
  CStore at(std::int64_t columns) const {
    CStore s = *this;
    if (s.scale) s.scale += columns;
    if (s.shift) s.shift += columns;
    return s;
  }
};

struct SgemmKernels {
  std::int64_t mr, nr;  // register tile of the micro-kernel
  std::int64_t mc, kc;  // cache blocks: packed A block (L2) and depth (B micro-panel in L1)
  std::int64_t nc;      // columns of B packed at once (L3)

  // `a` points at A(i0, k0): a[i * lda + p] when !trans_a, a[p * lda + i] when trans_a.
  void (*pack_a)(bool trans_a, const float* a, std::int64_t lda, std::int64_t mc, std::int64_t kc, float* packed);
  // `b` points at B(k0, j0): b[p * ldb + j] when !trans_b, b[j * ldb + p] when trans_b.
  // Scales by alpha while copying.
  void (*pack_b)(bool trans_b, const float* b, std::int64_t ldb, std::int64_t kc, std::int64_t nc, float alpha,
                 float* packed);
  // C[mc, nc] = packed_a @ packed_b, stored as `store` says.
  void (*macro_kernel)(std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* packed_a,
                       const float* packed_b, float* c, std::int64_t ldc, const CStore& store);
  // The same with A read in place (`a` at A(i0, k0) as for pack_a; a_rows >=
  // mc rows of A exist from there on, which bounds the software prefetch);
  // only a ragged last row panel is packed, into edge_panel (mr * kc floats).
  void (*macro_kernel_unpacked_a)(bool trans_a, std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* a,
                                  std::int64_t lda, std::int64_t a_rows, const float* packed_b, float* c,
                                  std::int64_t ldc, const CStore& store, float* edge_panel);
  // The same with B read in place too (not transposed, alpha 1: `b` at
  // B(k0, j0), rows ldb apart); a ragged last column panel is packed into
  // edge_b (kc * nr floats). For few rows of A, where packing B would cost
  // as much as the product.
  void (*macro_kernel_unpacked_ab)(bool trans_a, std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* a,
                                   std::int64_t lda, std::int64_t a_rows, const float* b, std::int64_t ldb, float* c,
                                   std::int64_t ldc, const CStore& store, float* edge_a, float* edge_b);
  // Orders this thread's non-temporal stores before its later stores.
  void (*stream_fence)();
  // For m <= small_rows_max rows of A (contiguous rows, lda apart; the
  // driver copies a transposed A): C[m, n] = alpha * A @ op(B) + beta * C,
  // reading each row of B once, in order. `b` at B(0, j0) (column j0 of
  // C's window), rows ldb apart, or stored n x k when trans_b.
  std::int64_t small_rows_max;
  void (*small_rows)(bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                     std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
  // C = act(C * scale[j] + shift[j]) over rows x cols (rows ldc apart).
  void (*apply_epilogue)(float* c, std::int64_t ldc, std::int64_t rows, std::int64_t cols, const CStore& store);
  // For tall_rows_min <= m <= tall_rows_max rows of A (contiguous rows, lda
  // apart) and B not transposed: C[m, n] = alpha * A @ B + beta * C, then
  // the epilogue (store, with scale/shift at C's column 0), one tile of all
  // m rows walking B in place, tall_cols columns at a time, so B is read
  // once. edge_b holds k * tall_cols floats (a padded copy of B's last
  // partial column block).
  std::int64_t tall_rows_min, tall_rows_max, tall_cols;
  void (*tall_rows)(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
                    const float* b, std::int64_t ldb, float* c, std::int64_t ldc, const CStore& store,
                    float* edge_b);
};

namespace isa_scalar {
extern const SgemmKernels sgemm_kernels;
}
namespace isa_avx2 {
extern const SgemmKernels sgemm_kernels;
}
namespace isa_avx512 {
extern const SgemmKernels sgemm_kernels;
}

}  // namespace petal::cpu
