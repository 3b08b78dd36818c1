// Packing and the register-tiled micro-kernel of sgemm, written once against
// Vec<float> and compiled per ISA (see sgemm_kernels.hpp for the layouts).
#include "kernels/cpu/gemm/sgemm_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm/gemm_simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using namespace gemm;

constexpr std::int64_t kL = static_cast<std::int64_t>(kVecLanes);

// Register tile: MR rows of C by NV vectors. Accumulators MR * NV plus NV
// loads of B and one broadcast of A must fit the register file
// (AVX-512: 32 zmm, AVX2: 16 ymm). Measured on Zen 5, 12 x 2 zmm beats
// 14 x 2, 8 x 3 and 6 x 4 by 5-10% on large problems.
//
// Cache blocks (Zen 5: 48 KiB L1d, 1 MiB L2 per core):
//   kc: one A micro-panel (mr x kc) and the B micro-panel streaming past it
//       (kc x nr) must fit L1 together: 256 * (12 + 32) * 4 B = 44 KiB.
//   nc: the packed B slice (kc x nc) stays in L2 while every row panel of A
//       walks over it: 256 * 384 * 4 B = 384 KiB, leaving room for A and C.
//   mc: rows of A packed at once where A is packed (transposed A).
#if defined(PETAL_ISA_AVX512)
constexpr int kMr = 12, kNv = 2;
constexpr std::int64_t kMc = 12 * 24, kKc = 256, kNc = 384;
#elif defined(PETAL_ISA_AVX2)
// Typical AVX2 parts have a 32 KiB L1d and 256 KiB - 1 MiB L2.
constexpr int kMr = 6, kNv = 2;
constexpr std::int64_t kMc = 6 * 24, kKc = 256, kNc = 256;
#else
constexpr int kMr = 4, kNv = 4;
constexpr std::int64_t kMc = 4 * 32, kKc = 256, kNc = 512;
#endif
constexpr std::int64_t kNr = kNv * kL;
// Up to this many rows of A, small_rows replaces the register-tiled path.
constexpr std::int64_t kSmallRows = 4;

using V = VecF;

#define PETAL_UNROLL _Pragma("GCC unroll 32")

struct Tile {
  V acc[kMr][kNv];
};

// How the micro-kernel reads A(r, p) for the MR rows of one tile.
enum class ALayout {
  Packed,      // packed panel: a[p * MR + r]
  Rows,        // A itself, not transposed: a[r * lda + p]
  Transposed,  // A itself, stored K x M: a[p * lda + r]
};

// Software prefetch of a later row panel of A read in place (ALayout::Rows):
// one cache line per K step, rows round-robin, so all mr * ceil(kc / 16)
// lines are requested within the first kc steps (mr <= 16). A sits in memory
// for the tall-skinny GEMMs of 1x1 convolutions, and the hardware prefetcher
// does not follow mr interleaved row streams well enough.
struct RowPrefetcher {
  const float* base;  // first row of the panel to fetch
  std::int64_t lda, kc;
  const float* next;
  std::int64_t row = 0, col = 0;
  RowPrefetcher(const float* panel, std::int64_t lda_, std::int64_t kc_)
      : base(panel), lda(lda_), kc(kc_), next(panel) {}
  inline void step() {
    if (col >= kc) return;
    __builtin_prefetch(next, 0, 3);
    next += lda;
    if (++row == kMr) {
      row = 0;
      col += 16;
      next = base + col;
    }
  }
};

// acc = A (kc x MR, read as `layout` says) times the packed B panel (kc x NR),
// or only its first kUsedNv vectors (the others of the tile are zero): a
// last panel of at most one vector's columns (the 24 channels of
// MobileNetV2's block_1 and block_2 projections) then costs a column of
// multiply-adds, not a whole padded panel. Each sum is the same either way.
// (Always inlined: called from four places, GCC kept the prefetching
// variant out of line, and its tile then lived in memory, 1.5x slower.)
template <ALayout layout, int kUsedNv = kNv, bool kPrefetch = false>
[[gnu::always_inline]] inline void multiply_tile(std::int64_t kc, const float* __restrict a, std::int64_t lda,
                                                 const float* __restrict b, std::int64_t b_row_stride, Tile& t,
                                                 RowPrefetcher* prefetcher = nullptr) {
  PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
    PETAL_UNROLL for (int v = 0; v < kNv; ++v) t.acc[r][v] = broadcast(0.0f);
  }
  for (std::int64_t p = 0; p < kc; ++p) {
    if constexpr (kPrefetch) prefetcher->step();
    V bv[kUsedNv];
    PETAL_UNROLL for (int v = 0; v < kUsedNv; ++v) bv[v] = load(b + v * kL);
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      float a_rp;
      if constexpr (layout == ALayout::Packed) {
        a_rp = a[r];
      } else if constexpr (layout == ALayout::Rows) {
        a_rp = a[r * lda + p];
      } else {
        a_rp = a[r];
      }
      const V ar = broadcast(a_rp);
      PETAL_UNROLL for (int v = 0; v < kUsedNv; ++v) t.acc[r][v] = fma(ar, bv[v], t.acc[r][v]);
    }
    if constexpr (layout == ALayout::Packed) a += kMr;
    if constexpr (layout == ALayout::Transposed) a += lda;
    b += b_row_stride;
  }
}

// The epilogue of one vector: act(v * scale + shift), one rounding (as the
// channel kernels' separate pass computed it).
inline V epilogue(V v, const float* scale, const float* shift, bool relu6) {
  if (scale != nullptr && shift != nullptr) {
    v = fma(v, load(scale), load(shift));
  } else if (scale != nullptr) {
    v = v * load(scale);
  } else if (shift != nullptr) {
    v = v + load(shift);
  }
  if (relu6) v = vmin(vmax(v, broadcast(0.0f)), broadcast(6.0f));
  return v;
}

inline float epilogue(float v, const float* scale, const float* shift, bool relu6) {
  if (scale != nullptr && shift != nullptr) {
    v = sfma(v, *scale, *shift);
  } else if (scale != nullptr) {
    v *= *scale;
  } else if (shift != nullptr) {
    v += *shift;
  }
  if (relu6) v = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  return v;
}

// Writes a whole tile: C = acc + beta * C, then the epilogue; with
// store.stream, past the caches.
inline void store_full_tile(const Tile& t, float* c, std::int64_t ldc, const CStore& store) {
  const float beta = store.beta;
  if (store.has_epilogue()) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
        float* p = c + r * ldc + v * kL;
        V value = t.acc[r][v];
        if (beta != 0.0f) value = fma(broadcast(beta), load(p), value);
        value = epilogue(value, store.scale ? store.scale + v * kL : nullptr,
                         store.shift ? store.shift + v * kL : nullptr, store.relu6);
        if (store.stream) {
          stream(p, value);
        } else {
          gemm::store(p, value);
        }
      }
    }
    return;
  }
  const bool stream_c = store.stream;
  if (beta == 0.0f && stream_c) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) stream(c + r * ldc + v * kL, t.acc[r][v]);
    }
  } else if (beta == 0.0f) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) gemm::store(c + r * ldc + v * kL, t.acc[r][v]);
    }
  } else if (beta == 1.0f && stream_c) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
        float* p = c + r * ldc + v * kL;
        stream(p, load(p) + t.acc[r][v]);
      }
    }
  } else if (beta == 1.0f) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
        float* p = c + r * ldc + v * kL;
        gemm::store(p, load(p) + t.acc[r][v]);
      }
    }
  } else {
    const V vb = broadcast(beta);
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
        float* p = c + r * ldc + v * kL;
        gemm::store(p, fma(vb, load(p), t.acc[r][v]));
      }
    }
  }
}

// Writes the valid rows x cols corner of a tile (edges of C).
inline void store_partial_tile(const Tile& t, float* c, std::int64_t ldc, const CStore& store, std::int64_t rows,
                               std::int64_t cols) {
  alignas(64) float buf[kMr * kNr];
  PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
    PETAL_UNROLL for (int v = 0; v < kNv; ++v) gemm::store(buf + r * kNr + v * kL, t.acc[r][v]);
  }
  const float beta = store.beta;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* src = buf + r * kNr;
    float* dst = c + r * ldc;
    std::int64_t j = 0;
    if (store.has_epilogue()) {
      // Whole vectors as store_full_tile computes them (the same bits), so
      // narrow outputs (the 16 and 24 channels of MobileNetV2's early
      // projections, all in edge tiles) do not run the scalar loop.
      for (; j + kL <= cols; j += kL) {
        V value = load(src + j);
        if (beta != 0.0f) value = fma(broadcast(beta), load(dst + j), value);
        gemm::store(dst + j, epilogue(value, store.scale ? store.scale + j : nullptr,
                                      store.shift ? store.shift + j : nullptr, store.relu6));
      }
      for (; j < cols; ++j) {
        const float value = beta == 0.0f ? src[j] : src[j] + beta * dst[j];
        dst[j] = epilogue(value, store.scale ? store.scale + j : nullptr, store.shift ? store.shift + j : nullptr,
                          store.relu6);
      }
    } else if (beta == 0.0f) {
      for (; j + kL <= cols; j += kL) gemm::store(dst + j, load(src + j));
      for (; j < cols; ++j) dst[j] = src[j];
    } else {
      const V vb = broadcast(beta);
      for (; j + kL <= cols; j += kL) gemm::store(dst + j, fma(vb, load(dst + j), load(src + j)));
      for (; j < cols; ++j) dst[j] = src[j] + beta * dst[j];
    }
  }
}

// Prefetches a C tile (rows are ldc apart) so it arrives while the K loop
// runs instead of stalling the store.
inline void prefetch_c_tile(const float* c_tile, std::int64_t ldc, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    __builtin_prefetch(c_tile + r * ldc, 1, 3);
    __builtin_prefetch(c_tile + r * ldc + cols - 1, 1, 3);
  }
}

// How row_panel stores its tiles, chosen once per call: the common stores
// (C overwritten or accumulated, the batch-norm epilogue of 1x1
// convolutions, each cached or streamed) get their own instantiations. The
// general store tests beta, scale, shift, relu6 and the stream alignment for
// each of the tile's vectors: with K = 16 (MobileNetV2's block_1
// expansion) those tests were 40% of the GEMM's time. In the special
// instantiations a whole tile also never has its address taken, so it stays
// in registers from the K loop to the store. The arithmetic is the general
// path's, so the bits are the same.
enum class TileOp { General, Overwrite, ScaleShift, ScaleShiftRelu6 };

struct TileStoreKind {
  TileOp op;
  bool accumulate;  // beta 1: the K slices after the first
  bool stream;
};

TileStoreKind tile_store_kind(const CStore& store) {
  const bool scale_shift = store.scale != nullptr && store.shift != nullptr;
  const TileOp op = !store.has_epilogue() ? TileOp::Overwrite
                    : scale_shift         ? (store.relu6 ? TileOp::ScaleShiftRelu6 : TileOp::ScaleShift)
                                          : TileOp::General;
  if (store.beta == 0.0f) return {op, false, store.stream};
  if (store.beta == 1.0f && !store.stream) return {op, true, false};
  return {TileOp::General, false, false};
}

template <TileOp kOp, bool kAccumulate, bool kStream>
[[gnu::always_inline]] inline void store_whole_tile(const Tile& t, float* c, std::int64_t ldc, const float* scale,
                                                    const float* shift) {
  constexpr bool kScaleShift = kOp == TileOp::ScaleShift || kOp == TileOp::ScaleShiftRelu6;
  const V zero = broadcast(0.0f), six = broadcast(6.0f);
  auto finish = [&](float* p, V value, const V& sc, const V& sh) {
    if constexpr (kAccumulate) value = load(p) + value;
    if constexpr (kScaleShift) value = fma(value, sc, sh);
    if constexpr (kOp == TileOp::ScaleShiftRelu6) value = vmin(vmax(value, zero), six);
    if constexpr (kStream) {
      stream(p, value);
    } else {
      gemm::store(p, value);
    }
  };
  V sc[kNv], sh[kNv];
  PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
    if constexpr (kScaleShift) {
      sc[v] = load(scale + v * kL);
      sh[v] = load(shift + v * kL);
    } else {
      sc[v] = sh[v] = zero;
    }
  }
  // Streamed, each row's vectors go out together (whole lines for the
  // write-combining buffers); cached, column by column, so that only one
  // column's scale and shift occupy registers.
  if constexpr (kStream) {
    PETAL_UNROLL for (int r = 0; r < kMr; ++r) {
      PETAL_UNROLL for (int v = 0; v < kNv; ++v) finish(c + r * ldc + v * kL, t.acc[r][v], sc[v], sh[v]);
    }
  } else {
    PETAL_UNROLL for (int v = 0; v < kNv; ++v) {
      PETAL_UNROLL for (int r = 0; r < kMr; ++r) finish(c + r * ldc + v * kL, t.acc[r][v], sc[v], sh[v]);
    }
  }
}

template <TileOp kOp, bool kAccumulate, bool kStream>
[[gnu::always_inline]] inline void store_tile(const Tile& t, float* c_tile, std::int64_t ldc, const CStore& store,
                                              std::int64_t j, std::int64_t rows, std::int64_t cols) {
  if constexpr (kOp == TileOp::General) {
    if (rows == kMr && cols == kNr) {
      store_full_tile(t, c_tile, ldc, store.at(j));
    } else {
      store_partial_tile(t, c_tile, ldc, store.at(j), rows, cols);
    }
  } else if (rows == kMr && cols == kNr) {
    store_whole_tile<kOp, kAccumulate, kStream>(t, c_tile, ldc, store.scale ? store.scale + j : nullptr,
                                                store.shift ? store.shift + j : nullptr);
  } else {
    const Tile copy = t;  // the copy's address is taken, not the tile's
    store_partial_tile(copy, c_tile, ldc, store.at(j), rows, cols);
  }
}

// Where the micro-kernel finds the B micro-panels of a slice: packed
// (panel j at b + j * kc, rows kNr apart) or B itself (panel j at b + j *
// kNr, rows ldb apart, with a ragged last panel packed into edge_panel).
struct BPanels {
  const float* b;
  std::int64_t panel_stride, row_stride;
  const float* edge_panel = nullptr;  // unpacked B: the last panel when it has fewer than kNr columns

  static BPanels packed(const float* packed_b, std::int64_t kc) { return {packed_b, kc * kNr, kNr}; }
  const float* panel(std::int64_t j, std::int64_t cols, std::int64_t& stride) const {
    if (edge_panel != nullptr && cols < kNr) {
      stride = kNr;
      return edge_panel;
    }
    stride = row_stride;
    return b + (j / kNr) * panel_stride;
  }
};

// One row panel of C (rows <= MR) against every B panel of the slice. The
// A micro-panel is the outer loop so it stays in L1 while the B micro-panels
// stream from the L2-resident B slice.
template <ALayout layout, TileOp kOp, bool kAccumulate, bool kStream>
void row_panel_as(std::int64_t rows, std::int64_t nc, std::int64_t kc, const float* a, std::int64_t lda,
                  const BPanels& panels, float* c, std::int64_t ldc, const CStore& store, const float* prefetch_rows,
                  std::int64_t prefetch_lda) {
  for (std::int64_t j = 0; j < nc; j += kNr) {
    const std::int64_t cols = std::min(kNr, nc - j);
    std::int64_t b_row_stride = 0;
    const float* b_panel = panels.panel(j, cols, b_row_stride);
    float* c_tile = c + j;
    // A streamed C is never read: fetching it would bring back the read
    // traffic that streaming saves.
    if (!(store.stream && store.beta == 0.0f)) prefetch_c_tile(c_tile, ldc, rows, cols);
    Tile t;
    const bool one_vector = kNv > 1 && cols <= kL;
    if (layout == ALayout::Rows && j == 0 && prefetch_rows != nullptr) {
      RowPrefetcher prefetcher(prefetch_rows, prefetch_lda, kc);
      if (one_vector) {
        multiply_tile<layout, 1, true>(kc, a, lda, b_panel, b_row_stride, t, &prefetcher);
      } else {
        multiply_tile<layout, kNv, true>(kc, a, lda, b_panel, b_row_stride, t, &prefetcher);
      }
    } else if (one_vector) {
      multiply_tile<layout, 1>(kc, a, lda, b_panel, b_row_stride, t);
    } else {
      multiply_tile<layout>(kc, a, lda, b_panel, b_row_stride, t);
    }
    store_tile<kOp, kAccumulate, kStream>(t, c_tile, ldc, store, j, rows, cols);
  }
}

template <ALayout layout>
inline void row_panel(std::int64_t rows, std::int64_t nc, std::int64_t kc, const float* a, std::int64_t lda,
                      const BPanels& panels, float* c, std::int64_t ldc, const CStore& store,
                      const float* prefetch_rows = nullptr, std::int64_t prefetch_lda = 0) {
  const auto run = [&]<TileOp kOp>(const TileStoreKind& kind) {
    if (kind.accumulate) {
      row_panel_as<layout, kOp, true, false>(rows, nc, kc, a, lda, panels, c, ldc, store, prefetch_rows,
                                             prefetch_lda);
    } else if (kind.stream) {
      row_panel_as<layout, kOp, false, true>(rows, nc, kc, a, lda, panels, c, ldc, store, prefetch_rows,
                                             prefetch_lda);
    } else {
      row_panel_as<layout, kOp, false, false>(rows, nc, kc, a, lda, panels, c, ldc, store, prefetch_rows,
                                              prefetch_lda);
    }
  };
  const TileStoreKind kind = tile_store_kind(store);
  switch (kind.op) {
    case TileOp::Overwrite:
      run.template operator()<TileOp::Overwrite>(kind);
      break;
    case TileOp::ScaleShift:
      run.template operator()<TileOp::ScaleShift>(kind);
      break;
    case TileOp::ScaleShiftRelu6:
      run.template operator()<TileOp::ScaleShiftRelu6>(kind);
      break;
    case TileOp::General:
      row_panel_as<layout, TileOp::General, false, false>(rows, nc, kc, a, lda, panels, c, ldc, store, prefetch_rows,
                                                          prefetch_lda);
      break;
  }
}

void macro_kernel(std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* packed_a, const float* packed_b,
                  float* c, std::int64_t ldc, const CStore& store) {
  for (std::int64_t i = 0; i < mc; i += kMr) {
    row_panel<ALayout::Packed>(std::min<std::int64_t>(kMr, mc - i), nc, kc, packed_a + (i / kMr) * kc * kMr, 0,
                               BPanels::packed(packed_b, kc), c + i * ldc, ldc, store);
  }
}

void pack_a(bool trans_a, const float* a, std::int64_t lda, std::int64_t mc, std::int64_t kc, float* packed);
void pack_b(bool trans_b, const float* b, std::int64_t ldb, std::int64_t kc, std::int64_t nc, float alpha,
            float* packed);

// Leading dimensions (in floats) that put every row of A in the same L1 set.
constexpr std::int64_t kAliasingFloats = 1024;

// A thread's buffer for one MR-row panel of A copied with a padded stride.
float* aliasing_free_rows(std::int64_t kc) {
  thread_local std::vector<float> buffer;
  const auto floats = static_cast<std::size_t>(kMr * (kc + kL));
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

// Whole MR-row tiles read A in place (no packing); only a ragged last row
// panel is packed, into `edge_panel` (MR x kc floats).
void unpacked_a_panels(bool trans_a, std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* a,
                       std::int64_t lda, std::int64_t a_rows, const BPanels& panels, float* c, std::int64_t ldc,
                       const CStore& store, float* edge_panel) {
  std::int64_t i = 0;
  for (; i + kMr <= mc; i += kMr) {
    if (trans_a) {
      row_panel<ALayout::Transposed>(kMr, nc, kc, a + i, lda, panels, c + i * ldc, ldc, store);
    } else if (lda % kAliasingFloats == 0) {
      // Rows a multiple of 4 KiB apart fall into the same L1 set: the panel's
      // 12 rows would not fit its ways. A copy with a padded stride does.
      // The next panel's rows are prefetched as for A read in place, so the
      // next copy does not wait on memory (2048 squares: 8% of the time in
      // the copy without).
      float* copy = aliasing_free_rows(kc);
      const std::int64_t ld = kc + kL;
      for (int r = 0; r < kMr; ++r) std::copy(a + (i + r) * lda, a + (i + r) * lda + kc, copy + r * ld);
      const float* prefetch_rows = i + 2 * kMr <= a_rows ? a + (i + kMr) * lda : nullptr;
      row_panel<ALayout::Rows>(kMr, nc, kc, copy, ld, panels, c + i * ldc, ldc, store, prefetch_rows, lda);
    } else {
      // The next panel may lie past this block (the next thread's work item).
      const float* prefetch_rows = i + 2 * kMr <= a_rows ? a + (i + kMr) * lda : nullptr;
      row_panel<ALayout::Rows>(kMr, nc, kc, a + i * lda, lda, panels, c + i * ldc, ldc, store, prefetch_rows, lda);
    }
  }
  if (i < mc) {
    pack_a(trans_a, trans_a ? a + i : a + i * lda, lda, mc - i, kc, edge_panel);
    row_panel<ALayout::Packed>(mc - i, nc, kc, edge_panel, 0, panels, c + i * ldc, ldc, store);
  }
}

void macro_kernel_unpacked_a(bool trans_a, std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* a,
                             std::int64_t lda, std::int64_t a_rows, const float* packed_b, float* c, std::int64_t ldc,
                             const CStore& store, float* edge_panel) {
  unpacked_a_panels(trans_a, mc, nc, kc, a, lda, a_rows, BPanels::packed(packed_b, kc), c, ldc, store, edge_panel);
}

void macro_kernel_unpacked_ab(bool trans_a, std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* a,
                              std::int64_t lda, std::int64_t a_rows, const float* b, std::int64_t ldb, float* c,
                              std::int64_t ldc, const CStore& store, float* edge_a, float* edge_b) {
  BPanels panels{b, kNr, ldb};
  const std::int64_t full = nc / kNr * kNr;
  if (full < nc) {
    pack_b(false, b + full, ldb, kc, nc - full, 1.0f, edge_b);
    panels.edge_panel = edge_b;
  }
  unpacked_a_panels(trans_a, mc, nc, kc, a, lda, a_rows, panels, c, ldc, store, edge_a);
}

void pack_a(bool trans_a, const float* a, std::int64_t lda, std::int64_t mc, std::int64_t kc, float* packed) {
  for (std::int64_t i0 = 0; i0 < mc; i0 += kMr) {
    const std::int64_t rows = std::min<std::int64_t>(kMr, mc - i0);
    float* panel = packed + (i0 / kMr) * kc * kMr;
    if (trans_a) {
      // A(i, p) = a[p * lda + i]: each k step copies rows contiguous values.
      if (rows == kMr) {
        for (std::int64_t p = 0; p < kc; ++p) {
          const float* src = a + p * lda + i0;
          float* dst = panel + p * kMr;
          PETAL_UNROLL for (int r = 0; r < kMr; ++r) dst[r] = src[r];  // fixed count: vectorised
        }
        continue;
      }
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

// ---- Few rows of A (GEMV-like: a Dense layer on 1 to 4 samples) ----------
//
// With M <= kSmallRows the register tile of the micro-kernel would be mostly
// empty rows, and B (read once, the whole cost) would be walked one narrow
// column panel at a time, a row per 4 KiB page for a 1280 x 1000 classifier:
// at batch 1 that product took 15% of MobileNetV2's time. These kernels read
// each row of B once, in order.

// C[:, 0:n) = alpha * A B + beta * C for M rows, B not transposed: four rows
// of B at a time update the (L1-resident) rows of C.
template <int M>
void small_rows_product(std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda, const float* b,
                        std::int64_t ldb, float* c, std::int64_t ldc) {
  std::int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    const float* b0 = b + p * ldb;
    const float* b1 = b0 + ldb;
    const float* b2 = b1 + ldb;
    const float* b3 = b2 + ldb;
    float s[M][4];
    V coef[M][4];
    PETAL_UNROLL for (int r = 0; r < M; ++r) {
      PETAL_UNROLL for (int q = 0; q < 4; ++q) {
        s[r][q] = alpha * a[r * lda + p + q];
        coef[r][q] = broadcast(s[r][q]);
      }
    }
    std::int64_t j = 0;
    for (; j + kL <= n; j += kL) {
      const V v0 = load(b0 + j), v1 = load(b1 + j), v2 = load(b2 + j), v3 = load(b3 + j);
      PETAL_UNROLL for (int r = 0; r < M; ++r) {
        float* cr = c + r * ldc + j;
        V acc = fma(coef[r][0], v0, load(cr));
        acc = fma(coef[r][1], v1, acc);
        acc = fma(coef[r][2], v2, acc);
        store(cr, fma(coef[r][3], v3, acc));
      }
    }
    for (; j < n; ++j)
      PETAL_UNROLL for (int r = 0; r < M; ++r) c[r * ldc + j] += s[r][0] * b0[j] + s[r][1] * b1[j] + s[r][2] * b2[j] +
                                                                 s[r][3] * b3[j];
  }
  for (; p < k; ++p) {
    const float* bp = b + p * ldb;
    float s[M];
    V coef[M];
    PETAL_UNROLL for (int r = 0; r < M; ++r) {
      s[r] = alpha * a[r * lda + p];
      coef[r] = broadcast(s[r]);
    }
    std::int64_t j = 0;
    for (; j + kL <= n; j += kL) {
      const V v = load(bp + j);
      PETAL_UNROLL for (int r = 0; r < M; ++r) store(c + r * ldc + j, fma(coef[r], v, load(c + r * ldc + j)));
    }
    for (; j < n; ++j) PETAL_UNROLL for (int r = 0; r < M; ++r) c[r * ldc + j] += s[r] * bp[j];
  }
}

// C = alpha * A B^T + beta * C for M rows, B stored n x k: dot products of
// rows of A with four rows of B at a time.
template <int M>
void small_rows_product_bt(std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
                           const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  auto finish = [&](int r, std::int64_t j, float dot) {
    float& out = c[r * ldc + j];
    out = beta == 0.0f ? alpha * dot : alpha * dot + beta * out;
  };
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    V acc[M][4];
    PETAL_UNROLL for (int r = 0; r < M; ++r) {
      PETAL_UNROLL for (int q = 0; q < 4; ++q) acc[r][q] = broadcast(0.0f);
    }
    std::int64_t p = 0;
    for (; p + kL <= k; p += kL) {
      V bv[4];
      PETAL_UNROLL for (int q = 0; q < 4; ++q) bv[q] = load(b + (j + q) * ldb + p);
      PETAL_UNROLL for (int r = 0; r < M; ++r) {
        const V av = load(a + r * lda + p);
        PETAL_UNROLL for (int q = 0; q < 4; ++q) acc[r][q] = fma(av, bv[q], acc[r][q]);
      }
    }
    PETAL_UNROLL for (int r = 0; r < M; ++r) {
      PETAL_UNROLL for (int q = 0; q < 4; ++q) {
        float dot = vreduce_add(acc[r][q]);
        for (std::int64_t t = p; t < k; ++t) dot += a[r * lda + t] * b[(j + q) * ldb + t];
        finish(r, j + q, dot);
      }
    }
  }
  for (; j < n; ++j) {
    V acc[M];
    PETAL_UNROLL for (int r = 0; r < M; ++r) acc[r] = broadcast(0.0f);
    std::int64_t p = 0;
    for (; p + kL <= k; p += kL) {
      const V bv = load(b + j * ldb + p);
      PETAL_UNROLL for (int r = 0; r < M; ++r) acc[r] = fma(load(a + r * lda + p), bv, acc[r]);
    }
    PETAL_UNROLL for (int r = 0; r < M; ++r) {
      float dot = vreduce_add(acc[r]);
      for (std::int64_t t = p; t < k; ++t) dot += a[r * lda + t] * b[j * ldb + t];
      finish(r, j, dot);
    }
  }
}

void small_rows(bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (trans_b) {
    switch (m) {
      case 1: return small_rows_product_bt<1>(n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      case 2: return small_rows_product_bt<2>(n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      case 3: return small_rows_product_bt<3>(n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      default: return small_rows_product_bt<4>(n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  }
  for (std::int64_t r = 0; r < m; ++r) {
    float* row = c + r * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else if (beta != 1.0f) {
      for (std::int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
  switch (m) {
    case 1: return small_rows_product<1>(n, k, alpha, a, lda, b, ldb, c, ldc);
    case 2: return small_rows_product<2>(n, k, alpha, a, lda, b, ldb, c, ldc);
    case 3: return small_rows_product<3>(n, k, alpha, a, lda, b, ldb, c, ldc);
    default: return small_rows_product<4>(n, k, alpha, a, lda, b, ldb, c, ldc);
  }
}

// ---- Tall rows (a few more rows than the register tile) --------------------
//
// 7 or 8 rows on AVX2, which the tiled path ran as a 6-row tile plus a
// mostly empty second one, reading B once per tile. Here each column block
// of B is read from memory once, by the first of its row tiles, in place:
// 8 x 1280 x 1000 (the classifier on an 8-image slice) on Zen 3 went from
// 36-40 to 50-54 GFLOP/s on one thread with one 8-row tile, then to 75-78
// (oneDNN's dnnl_sgemm 75-77 in the same process) with two 4-row tiles and
// prefetching, and 8 x 256 x 240 (B in L2) from 80 to 94.
// Not enabled on AVX-512, where small_rows takes up to 11 rows in groups of
// 4 (86-99 GFLOP/s on Zen 4 for that shape) and no AVX-512 machine was at
// hand to compare, nor on the scalar build (4-row tile).
#if defined(PETAL_ISA_AVX512)
constexpr int kTallNv = 2;
constexpr int kTallTileRows = 8;
constexpr std::int64_t kTallMin = 9;  // none (see above)
#elif defined(PETAL_ISA_AVX2)
// Two tiles of 4 rows x 3 vectors: 12 accumulators keep both FMA pipes busy
// (8 rows x 1 vector, 8 accumulators at FMA latency 4, ran at 60 GFLOP/s
// with B in L2), and the second tile reads the column block (256 x 24
// floats) from L1 or L2.
constexpr int kTallNv = 3;
constexpr int kTallTileRows = 4;
constexpr std::int64_t kTallMin = 7;
#else
constexpr int kTallNv = 1;
constexpr int kTallTileRows = 8;
constexpr std::int64_t kTallMin = 9;  // none
#endif
constexpr int kTallRows = 8;
constexpr std::int64_t kTallCols = kTallNv * kL;
// The tiles' K slices, so that a row gives the same bits in either kernel
// (batch-split inference cuts a batch at any row).
constexpr std::int64_t kTallK = kKc;
// B rows this far ahead are prefetched by the first tile of a column block:
// B read in place is a row per K step, a page apart for 1000 columns, where
// the hardware prefetchers do not follow (on Zen 3, 8 and 16 rows ahead
// alike, 32 and 64 slower).
constexpr std::int64_t kTallPrefetchDistance = 16;

// Rows [row0, row0 + kTallTileRows) of one column block (cols <= kTallCols)
// of C: B rows `b_stride` apart from `b` (B itself, or a padded copy of its
// last columns); rows at or past m are computed from repeated rows and
// dropped.
template <bool kPrefetchB>
inline void tall_tile(std::int64_t m, int row0, std::int64_t cols, std::int64_t k, float alpha,
                      const float* const* rows, const float* b, std::int64_t b_stride, float* c, std::int64_t ldc,
                      const CStore& store) {
  V acc[kTallTileRows][kTallNv];
  PETAL_UNROLL for (int r = 0; r < kTallTileRows; ++r) {
    PETAL_UNROLL for (int v = 0; v < kTallNv; ++v) acc[r][v] = broadcast(0.0f);
  }
  const float* tile_rows[kTallTileRows];
  PETAL_UNROLL for (int r = 0; r < kTallTileRows; ++r) tile_rows[r] = rows[row0 + r];
  for (std::int64_t p = 0; p < k; ++p) {
    const float* b_row = b + p * b_stride;
    if constexpr (kPrefetchB) {
      __builtin_prefetch(b_row + kTallPrefetchDistance * b_stride, 0, 3);
      __builtin_prefetch(b_row + kTallPrefetchDistance * b_stride + kTallCols - 1, 0, 3);
    }
    V bv[kTallNv];
    PETAL_UNROLL for (int v = 0; v < kTallNv; ++v) bv[v] = load(b_row + v * kL);
    PETAL_UNROLL for (int r = 0; r < kTallTileRows; ++r) {
      const V ar = broadcast(tile_rows[r][p]);
      PETAL_UNROLL for (int v = 0; v < kTallNv; ++v) acc[r][v] = fma(ar, bv[v], acc[r][v]);
    }
  }
  alignas(64) float buf[kTallCols];
  for (int r = 0; r < kTallTileRows && row0 + r < m; ++r) {
    float* dst = c + (row0 + r) * ldc;
    PETAL_UNROLL for (int v = 0; v < kTallNv; ++v) {
      V value = acc[r][v];
      if (alpha != 1.0f) value = value * broadcast(alpha);
      if (cols == kTallCols) {
        if (store.beta != 0.0f) value = fma(broadcast(store.beta), load(dst + v * kL), value);
        if (store.has_epilogue())
          value = epilogue(value, store.scale ? store.scale + v * kL : nullptr,
                           store.shift ? store.shift + v * kL : nullptr, store.relu6);
        gemm::store(dst + v * kL, value);
      } else {
        gemm::store(buf + v * kL, value);
      }
    }
    if (cols < kTallCols) {
      for (std::int64_t j = 0; j < cols; ++j) {
        const float value = store.beta == 0.0f ? buf[j] : buf[j] + store.beta * dst[j];
        dst[j] = store.has_epilogue() ? epilogue(value, store.scale ? store.scale + j : nullptr,
                                                 store.shift ? store.shift + j : nullptr, store.relu6)
                                      : value;
      }
    }
  }
}

// C[m, cols) for one column block: the first tile streams the block of B
// in (prefetching), the others read it from L1 or L2.
inline void tall_block(std::int64_t m, std::int64_t cols, std::int64_t k, float alpha, const float* const* rows,
                       const float* b, std::int64_t b_stride, float* c, std::int64_t ldc, const CStore& store) {
  tall_tile<true>(m, 0, cols, k, alpha, rows, b, b_stride, c, ldc, store);
  for (int row0 = kTallTileRows; row0 < kTallRows && row0 < m; row0 += kTallTileRows)
    tall_tile<false>(m, row0, cols, k, alpha, rows, b, b_stride, c, ldc, store);
}

// C[m, n) = alpha * A B + beta * C, then the epilogue; A's m rows lda apart,
// B not transposed (rows ldb apart). edge_b: k * kTallCols floats for a
// padded copy of B's last, partial column block.
void tall_rows(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
               const float* b, std::int64_t ldb, float* c, std::int64_t ldc, const CStore& store, float* edge_b) {
  const std::int64_t full = n / kTallCols * kTallCols;
  if (full < n) {
    const std::int64_t cols = n - full;
    for (std::int64_t p = 0; p < k; ++p) {
      float* dst = edge_b + p * kTallCols;
      std::int64_t j = 0;
      for (; j < cols; ++j) dst[j] = b[p * ldb + full + j];
      for (; j < kTallCols; ++j) dst[j] = 0.0f;
    }
  }
  // K in slices whose rows of A stay in L1 (8 x 1280 floats would not);
  // later slices add to C, the last applies the epilogue.
  const std::int64_t slices = (k + kTallK - 1) / kTallK;
  const std::int64_t depth = (k + slices - 1) / slices;
  for (std::int64_t p0 = 0; p0 < k; p0 += depth) {
    const std::int64_t kd = std::min(depth, k - p0);
    CStore slice_store = p0 + kd == k ? store : CStore{};
    slice_store.beta = p0 == 0 ? store.beta : 1.0f;
    // Rows past m repeat the last row: their sums are computed and dropped.
    const float* rows[kTallRows];
    for (int r = 0; r < kTallRows; ++r) rows[r] = a + std::min<std::int64_t>(r, m - 1) * lda + p0;
    for (std::int64_t j = 0; j < full; j += kTallCols)
      tall_block(m, kTallCols, kd, alpha, rows, b + p0 * ldb + j, ldb, c + j, ldc, slice_store.at(j));
    if (full < n)
      tall_block(m, n - full, kd, alpha, rows, edge_b + p0 * kTallCols, kTallCols, c + full, ldc,
                 slice_store.at(full));
  }
}

void apply_epilogue(float* c, std::int64_t ldc, std::int64_t rows, std::int64_t cols, const CStore& store) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    std::int64_t j = 0;
    for (; j + kL <= cols; j += kL)
      gemm::store(row + j, epilogue(load(row + j), store.scale ? store.scale + j : nullptr,
                                    store.shift ? store.shift + j : nullptr, store.relu6));
    for (; j < cols; ++j)
      row[j] = epilogue(row[j], store.scale ? store.scale + j : nullptr, store.shift ? store.shift + j : nullptr,
                        store.relu6);
  }
}

}  // namespace

extern const SgemmKernels sgemm_kernels;
const SgemmKernels sgemm_kernels = {kMr,
                                     kNr,
                                     kMc,
                                     kKc,
                                     kNc,
                                     pack_a,
                                     pack_b,
                                     macro_kernel,
                                     macro_kernel_unpacked_a,
                                     macro_kernel_unpacked_ab,
                                     vstream_fence,
                                     kSmallRows,
                                     small_rows,
                                     apply_epilogue,
                                     kTallMin,
                                     kTallRows,
                                     kTallCols,
                                     tall_rows};

}  // namespace petal::cpu::PETAL_ISA_NS
