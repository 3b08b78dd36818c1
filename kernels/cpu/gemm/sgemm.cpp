// sgemm driver: Goto/BLIS-style cache blocking around the per-ISA packing
// and micro-kernels of sgemm_kernels.cpp.
//
//   B is packed (alpha folded in) as kc x nc slices, for every K slice and
//   column block of one column group (at most kMaxPackedBFloats);
//   work items are (column block, K slice, row chunk), row chunks innermost,
//   so a B slice stays in L2 while row chunks of A walk over it; the
//   macro-kernel walks MR-row panels of A over the packed B slice: A is read
//   in place (rows prefetched a panel ahead), or packed when it is
//   transposed and N is wide.
//
// Threads take B slices to pack, then work items, from shared atomic
// counters: nobody waits at a barrier for a thread that has not started (on
// a busy machine the pool's second thread can wake milliseconds late); a
// thread only waits for work another thread has claimed and is running (a B
// slice being packed, the previous K slice of the same C tile).
//
// Small problems run on the calling thread, as do calls from inside a
// parallel region (the pool does not nest).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>

#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm/constant_operands.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"
#include "kernels/cpu/gemm/sgemm_kernels.hpp"
#include "kernels/cpu/isa.hpp"

namespace petal::cpu {
namespace {

// Below this many multiply-adds (128^3, about 20 us on one Zen 5 core),
// waking the pool's second thread costs about as much as it saves.
constexpr std::int64_t kParallelMinMacs = std::int64_t{1} << 21;
// Packed B of one column group (16 MiB: 2048 x 2048 fits in one group).
constexpr std::int64_t kMaxPackedBFloats = std::int64_t{1} << 22;
// Row chunks (in MR-row panels): enough per thread to even out threads that
// start late or get preempted, few enough that claiming work stays cheap.
// 8 rather than 4 (Zen 3, 2 threads, in-process alternation): 256 square
// 0.97-0.99x the time (with the pieces above), 1024 0.975x, 2304 x 960 x
// 320 0.967x, 2048 0.98-1.01x.
constexpr std::int64_t kChunksPerThread = 8;
constexpr std::int64_t kMinChunkPanels = 4, kMaxChunkPanels = 64;
// Up to this many rows of A, B is read in place instead of packed: packing
// reads and writes all of B once, which for few rows costs as much as the
// product (1x1 convolutions of a single image's 6x6 pixels, or of the few
// pixels of one pass of the inverted-residual block op, against weights of
// up to 1280 x 320). Beyond it the packed panels win: read in place, each
// K step of a 16- or 32-column panel is a new row of B, on another page.
// On Zen 3 (AVX2), with the operands in cache, packing from 100 rows on was
// 1.02-1.32x faster (128 x 1000 x 1000: 1.32x, 256 x 960 x 160: 1.09x),
// at 36 to 72 rows 0.87-1.04x; 1024 rows, the earlier bound, left the
// 512 and 1024 squares at 0.65x OpenBLAS.
constexpr std::int64_t kUnpackedBMaxRows = 96;
// B's rows a multiple of this many floats (2 KiB) apart map a column panel
// onto a few cache sets, which it overflows (the 512 and 1024 squares:
// 1.18-1.74x faster packed at 64 to 1024 rows), so such a B is always packed.
constexpr std::int64_t kAliasingRowFloats = 512;
// Few rows of A: B's size (floats) from which the threads split its columns.
constexpr std::int64_t kSmallRowsParallelMinFloats = std::int64_t{1} << 18;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// K cut into equal slices no deeper than the kernel's kc: 320 = 160 + 160
// rather than 256 + 64, so no slice is so short that the C tile's load and
// store outweigh its K loop.
std::int64_t balanced_kc(std::int64_t k, std::int64_t kernel_kc) { return ceil_div(k, ceil_div(k, kernel_kc)); }

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

float* edge_b_buffer(std::int64_t floats) {
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

// Waits until ready() holds: a short spin (the other thread is usually
// microseconds from done), then yields, so that on a busy machine the thread
// being waited for can have the core.
template <class Ready>
void wait_until(Ready ready) {
  for (int spin = 0; !ready(); ++spin) {
    if (spin < 256) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

// The blocking of one column group [col_begin, col_begin + cols) of C, and
// the work items the threads share.
struct Plan {
  const SgemmKernels* kern;
  Operands op;
  std::int64_t m;
  std::int64_t col_begin, cols;  // this group's columns of C
  std::int64_t k_begin, k;       // this group's part of K
  float beta;                    // for its first K slice
  // K and N cut into equal blocks no larger than the kernel's kc / nc (see
  // balanced_kc).
  std::int64_t kc, nc, k_slices, n_blocks;
  std::int64_t slice_floats;  // one packed kc x nc slice (padded to whole panels)
  std::int64_t chunk_rows, row_chunks;
  // Reading A in place saves the packing pass, which costs as much as the
  // arithmetic when N is small (1x1 convolutions: M huge, N = 24..1280).
  // Rows of A stream well (software prefetch); a transposed A is read a
  // short row per K step, so it is packed unless few B panels share it.
  bool unpacked_a;
  bool unpacked_b;        // B read in place: no packing phase
  bool stream_c = false;  // the last K slice writes C past the caches
  bool k_slices_outermost = false;  // item order (K slice, column block, row chunk)
  CStore epilogue;        // applied by the last K slice (scale/shift indexed by C's column)
  float* packed_b;
  // All of B packed before the call (see prepack_b): no packing phase, and
  // a few rows read packed panels instead of B in place.
  const float* prepacked_b = nullptr;

  Plan(const SgemmKernels& kernels, const Operands& operands, std::int64_t m_, std::int64_t col_begin_,
       std::int64_t cols_, std::int64_t k_begin_, std::int64_t k_, float beta_, std::int64_t threads)
      : kern(&kernels), op(operands), m(m_), col_begin(col_begin_), cols(cols_), k_begin(k_begin_), k(k_),
        beta(beta_) {
    kc = balanced_kc(k, kern->kc);
    k_slices = ceil_div(k, kc);
    n_blocks = ceil_div(cols, kern->nc);
    nc = std::min(kern->nc, ceil_div(ceil_div(cols, n_blocks), kern->nr) * kern->nr);
    n_blocks = ceil_div(cols, nc);
    slice_floats = kc * ceil_div(nc, kern->nr) * kern->nr;
    const std::int64_t m_panels = ceil_div(m, kern->mr);
    const std::int64_t chunk_panels =
        std::clamp(ceil_div(m_panels, threads * kChunksPerThread), kMinChunkPanels, kMaxChunkPanels);
    chunk_rows = chunk_panels * kern->mr;
    row_chunks = ceil_div(m, chunk_rows);
    unpacked_a = !op.trans_a || cols <= 2 * kern->nr;
    unpacked_b = unpacked_a && !op.trans_b && op.alpha == 1.0f && m <= kUnpackedBMaxRows &&
                 op.ldb % kAliasingRowFloats != 0;
    if (unpacked_b && threads > 1) split_columns(threads);
    packed_b = nullptr;
  }

  // Few rows with B read in place: cut by rows, every row chunk reads all of
  // B again, and 36 rows went 24 + 12, one thread with twice the work
  // (Conv_1 of batch-1 MobileNetV2, 36 x 320 x 1280: 415 us on 2 threads
  // against 228 in ONNX Runtime). Instead one row chunk, and the threads take
  // column blocks (a multiple of the thread count), each reading its part of
  // B; K slices go outermost so the threads start on different blocks
  // rather than one waiting for the other's previous K slice of the same
  // block. The sums are the same as on one thread (neither kc nor the order
  // over K changes).
  void split_columns(std::int64_t threads) {
    chunk_rows = m;
    row_chunks = 1;
    const std::int64_t panels = ceil_div(cols, kern->nr);
    // The most blocks up to max(kernel's blocks, 2 per thread) that still
    // come out a multiple of the thread count once rounded to whole panels.
    const std::int64_t wanted = ceil_div(std::max(n_blocks, 2 * threads), threads);
    for (std::int64_t per_thread = wanted; per_thread >= 1; --per_thread) {
      const std::int64_t block_panels = ceil_div(panels, per_thread * threads);
      if (ceil_div(panels, block_panels) % threads == 0 || per_thread == 1) {
        nc = block_panels * kern->nr;
        break;
      }
    }
    n_blocks = ceil_div(cols, nc);
    slice_floats = kc * nc;
    k_slices_outermost = true;
  }

  // B read from a prepacked copy (a single column group, as run_sgemm
  // checks); the row-chunk or column split stays as chosen.
  void use_prepacked_b(const float* packed) {
    prepacked_b = packed;
    unpacked_b = false;
  }

  std::int64_t b_slices() const { return unpacked_b || prepacked_b ? 0 : n_blocks * k_slices; }
  // Each B slice is packed in this many pieces of whole panels: with fewer
  // slices than twice the threads, one thread packed a whole slice while
  // the others waited for it (a 256 square has one slice).
  std::int64_t pack_pieces = 1;
  std::int64_t pack_units() const { return b_slices() * pack_pieces; }
  void set_pack_pieces(std::int64_t threads) {
    const std::int64_t slices = b_slices();
    pack_pieces = 1;
    if (threads > 1 && slices > 0 && slices < 2 * threads)
      pack_pieces = std::min(ceil_div(2 * threads, slices), ceil_div(nc, kern->nr));
  }
  // Work items: (column block, K slice, row chunk), row chunks innermost so
  // consecutive items reuse the B slice from L2 (or (K slice, column block,
  // row chunk), see split_columns).
  std::int64_t items() const { return n_blocks * k_slices * row_chunks; }
  std::int64_t tiles() const { return n_blocks * row_chunks; }  // C tiles = progress counters
  std::int64_t a_scratch_floats() const { return (unpacked_a ? kern->mr : kern->mc) * kc; }
  float* slice(std::int64_t block, std::int64_t k_slice) const {
    return packed_b + (block * k_slices + k_slice) * slice_floats;
  }
  const float* b_slice(std::int64_t block, std::int64_t k_slice) const {
    if (prepacked_b == nullptr) return slice(block, k_slice);
    const std::int64_t p0 = k_slice * kc, depth = std::min(kc, k - p0);
    return prepacked_b + p0 * ceil_div(cols, kern->nr) * kern->nr + block * nc * depth;
  }

  // Piece `unit % pack_pieces` of B slice `unit / pack_pieces`: a range of
  // its panels, which sit depth * nr floats apart in the slice.
  void pack_b_unit(std::int64_t unit) const {
    const std::int64_t index = unit / pack_pieces, piece = unit % pack_pieces;
    const std::int64_t block = index / k_slices, k_slice = index % k_slices;
    const std::int64_t j0 = col_begin + block * nc, p0 = k_slice * kc, depth = std::min(kc, k - p0);
    const std::int64_t width = std::min(nc, col_begin + cols - j0), panels = ceil_div(width, kern->nr);
    const std::int64_t panel_begin = panels * piece / pack_pieces, panel_end = panels * (piece + 1) / pack_pieces;
    if (panel_begin >= panel_end) return;
    const std::int64_t c0 = panel_begin * kern->nr, c1 = std::min(width, panel_end * kern->nr);
    // p0 counts from k_begin; the operand pointers are absolute.
    kern->pack_b(op.trans_b, op.b_at(k_begin + p0, j0 + c0), op.ldb, depth, c1 - c0, op.alpha,
                 slice(block, k_slice) + panel_begin * depth * kern->nr);
  }

  // C tile (column block, row chunk) times B slice `k_slice`. `progress`
  // counts the slices already added to each tile: slice s of a tile starts
  // only after slice s - 1 (the claim order makes that item already taken, so
  // this waits at most for a thread that is running it).
  void compute_item(std::int64_t index, std::atomic<int>* progress) const {
    const std::int64_t chunk = index % row_chunks, rest = index / row_chunks;
    const std::int64_t k_slice = k_slices_outermost ? rest / n_blocks : rest % k_slices;
    const std::int64_t block = k_slices_outermost ? rest % n_blocks : rest / k_slices;
    std::atomic<int>& done = progress[block * row_chunks + chunk];
    wait_until([&] { return done.load(std::memory_order_acquire) == k_slice; });
    const std::int64_t row_begin = chunk * chunk_rows, rows = std::min(chunk_rows, m - row_begin);
    const std::int64_t j0 = col_begin + block * nc, width = std::min(nc, col_begin + cols - j0);
    const std::int64_t p0 = k_slice * kc, depth = std::min(kc, k - p0);
    CStore store;
    store.beta = k_slice == 0 ? beta : 1.0f;  // later K slices accumulate
    if (k_slice == k_slices - 1) {
      store = epilogue.at(j0);
      store.beta = k_slices == 1 ? beta : 1.0f;
      store.stream = stream_c;
    }
    const float* b_slice = unpacked_b ? nullptr : this->b_slice(block, k_slice);
    float* c_tile = op.c + row_begin * op.ldc + j0;
    if (unpacked_b) {
      kern->macro_kernel_unpacked_ab(op.trans_a, rows, width, depth, op.a_at(row_begin, k_begin + p0), op.lda,
                                     m - row_begin, op.b_at(k_begin + p0, j0), op.ldb, c_tile, op.ldc, store,
                                     packed_a_buffer(a_scratch_floats()),
                                     edge_b_buffer(kc * kern->nr));
    } else if (unpacked_a) {
      kern->macro_kernel_unpacked_a(op.trans_a, rows, width, depth, op.a_at(row_begin, k_begin + p0), op.lda,
                                    m - row_begin, b_slice, c_tile, op.ldc, store,
                                    packed_a_buffer(a_scratch_floats()));
    } else {
      // Pack mc rows at a time so the packed A block shares L2 with the B slice.
      float* packed_a = packed_a_buffer(a_scratch_floats());
      for (std::int64_t i = 0; i < rows; i += kern->mc) {
        const std::int64_t block_rows = std::min(kern->mc, rows - i);
        kern->pack_a(op.trans_a, op.a_at(row_begin + i, k_begin + p0), op.lda, block_rows, depth, packed_a);
        kern->macro_kernel(block_rows, width, depth, packed_a, b_slice, c_tile + i * op.ldc, op.ldc, store);
      }
    }
    done.store(static_cast<int>(k_slice + 1), std::memory_order_release);
  }
};

// Shared counters of one parallel pass over a Plan.
struct WorkCounters {
  std::atomic<std::int64_t> next_pack_unit{0}, pack_units_done{0}, next_item{0};
  std::unique_ptr<std::atomic<int>[]> progress;  // K slices done, per C tile
  explicit WorkCounters(std::int64_t tiles) : progress(new std::atomic<int>[static_cast<std::size_t>(tiles)]) {
    for (std::int64_t t = 0; t < tiles; ++t) progress[t].store(0, std::memory_order_relaxed);
  }
};

void run_worker(const Plan& plan, WorkCounters& work) {
  // Allocate this thread's scratch before claiming work: an allocation
  // failure inside an item would leave the other threads waiting for it.
  packed_a_buffer(plan.a_scratch_floats());
  if (plan.unpacked_b) edge_b_buffer(plan.kc * plan.kern->nr);
  const std::int64_t units = plan.pack_units();
  for (std::int64_t u; (u = work.next_pack_unit.fetch_add(1, std::memory_order_relaxed)) < units;) {
    plan.pack_b_unit(u);
    work.pack_units_done.fetch_add(1, std::memory_order_release);
  }
  // Every piece is claimed; wait only for those still being packed.
  wait_until([&] { return work.pack_units_done.load(std::memory_order_acquire) >= units; });
  const std::int64_t items = plan.items();
  for (std::int64_t i; (i = work.next_item.fetch_add(1, std::memory_order_relaxed)) < items;) {
    plan.compute_item(i, work.progress.get());
  }
  if (plan.stream_c) plan.kern->stream_fence();
}

}  // namespace

namespace {

// A's m rows contiguous, lda apart: A itself, or a transposed A copied into
// this thread's A buffer (few rows: the copy is small).
const float* rows_of_a(const Operands& op, std::int64_t m, std::int64_t k, std::int64_t& lda) {
  lda = op.lda;
  if (!op.trans_a) return op.a;
  float* rows = packed_a_buffer(m * k);
  for (std::int64_t p = 0; p < k; ++p)
    for (std::int64_t r = 0; r < m; ++r) rows[r * k + p] = op.a[p * op.lda + r];
  lda = k;
  return rows;
}

// Few rows of A: each thread takes a range of C's columns (whole cache
// lines), so the result does not depend on the thread count. More rows than
// the kernel takes (fewer than a register tile) run in groups, each reading
// the whole of B in order (blocks of B sized for L2, read by every group,
// were slower: 8 x 1280 x 1000 at 50-76 GFLOP/s against 99 unblocked).
void run_small_rows(const SgemmKernels& kern, const Operands& op, std::int64_t m, std::int64_t n, std::int64_t k,
                    float beta, bool serial, const CStore& epilogue) {
  std::int64_t lda = 0;
  const float* a = rows_of_a(op, m, k, lda);
  const std::int64_t group = kern.small_rows_max;
  auto columns = [&](std::int64_t j0, std::int64_t j1) {
    for (std::int64_t r0 = 0; r0 < m; r0 += group)
      kern.small_rows(op.trans_b, std::min(group, m - r0), j1 - j0, k, op.alpha, a + r0 * lda, lda, op.b_at(0, j0),
                      op.ldb, beta, op.c + r0 * op.ldc + j0, op.ldc);
    if (epilogue.has_epilogue()) kern.apply_epilogue(op.c + j0, op.ldc, m, j1 - j0, epilogue.at(j0));
  };
  constexpr std::int64_t kColumnUnit = 16;  // one 64-byte line of a row of C
  if (serial) {
    columns(0, n);
    return;
  }
  parallel_for(0, ceil_div(n, kColumnUnit), 1, [&](std::int64_t u0, std::int64_t u1) {
    columns(u0 * kColumnUnit, std::min(n, u1 * kColumnUnit));
  });
}

// A few more rows than small_rows takes, B not transposed: one tile of all
// the rows per column block (see SgemmKernels::tall_rows). The threads take
// column blocks, so the result does not depend on the thread count.
void run_tall_rows(const SgemmKernels& kern, const Operands& op, std::int64_t m, std::int64_t n, std::int64_t k,
                   float beta, bool serial, const CStore& epilogue) {
  std::int64_t lda = 0;
  const float* a = rows_of_a(op, m, k, lda);
  CStore store = epilogue;
  store.beta = beta;
  auto columns = [&](std::int64_t j0, std::int64_t j1) {
    kern.tall_rows(m, j1 - j0, k, op.alpha, a, lda, op.b + j0, op.ldb, op.c + j0, op.ldc, store.at(j0),
                   edge_b_buffer(k * kern.tall_cols));
  };
  if (serial) {
    columns(0, n);
    return;
  }
  parallel_for(0, ceil_div(n, kern.tall_cols), 1, [&](std::int64_t u0, std::int64_t u1) {
    columns(u0 * kern.tall_cols, std::min(n, u1 * kern.tall_cols));
  });
}

// B (k x n, rows ldb apart) packed for Plan::use_prepacked_b: for each
// balanced K slice, all n columns as the kernel's panels at that slice's
// depth. It does not depend on the thread count: the threads' column blocks
// are whole panels.
std::int64_t prepacked_b_floats(const SgemmKernels& kern, std::int64_t k, std::int64_t n) {
  return k * ceil_div(n, kern.nr) * kern.nr;
}

void prepack_b(const SgemmKernels& kern, const float* b, std::int64_t ldb, std::int64_t k, std::int64_t n,
               float* packed) {
  const std::int64_t kc = balanced_kc(k, kern.kc), padded_n = ceil_div(n, kern.nr) * kern.nr;
  for (std::int64_t p0 = 0; p0 < k; p0 += kc)
    kern.pack_b(false, b + p0 * ldb, ldb, std::min(kc, k - p0), n, 1.0f, packed + p0 * padded_n);
}

void run_sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
               const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
               std::int64_t ldc, bool stream_c, const CStore& epilogue = {}) {
  if (m <= 0 || n <= 0) return;
  const SgemmKernels& kern = select_table(isa_scalar::sgemm_kernels, isa_avx2::sgemm_kernels,
                                          isa_avx512::sgemm_kernels);
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    if (epilogue.has_epilogue()) kern.apply_epilogue(c, ldc, m, n, epilogue);
    return;
  }
  const Operands op{trans_a, trans_b, a, lda, b, ldb, alpha, c, ldc};
  const bool serial = in_parallel_region() || num_threads() == 1 || m * n * k < kParallelMinMacs;
  const int threads = serial ? 1 : num_threads();
  if (!trans_b && m >= kern.tall_rows_min && m <= kern.tall_rows_max) {
    run_tall_rows(kern, op, m, n, k, beta,
                  in_parallel_region() || num_threads() == 1 || n * k < kSmallRowsParallelMinFloats, epilogue);
    return;
  }
  if (m < kern.mr) {
    // Fewer rows than a register tile: the tiled path would run one mostly
    // empty tile walking B a panel at a time (8 x 1280 x 1000, the classifier
    // on one thread's 8-image slice: 10 GFLOP/s). Streaming B is memory-bound:
    // two cores read it faster than one well below the register-tiled path's
    // threshold.
    run_small_rows(kern, op, m, n, k, beta,
                   in_parallel_region() || num_threads() == 1 || n * k < kSmallRowsParallelMinFloats, epilogue);
    return;
  }

  // Groups of columns (and, for a very deep K, of K) bound the packed B
  // buffer; nearly every call is a single group.
  const std::int64_t padded_cols = ceil_div(n, kern.nr) * kern.nr;
  const std::int64_t group_k =
      (k + kern.kc) * std::min(padded_cols, kern.nc) <= kMaxPackedBFloats
          ? k
          : std::max<std::int64_t>(1, kMaxPackedBFloats / std::min(padded_cols, kern.nc) / kern.kc - 1) * kern.kc;
  const std::int64_t padded_k = std::min(k, group_k) + kern.kc;  // balanced slices round up by < k_slices
  const std::int64_t group_cols =
      std::max(kern.nr, std::min(padded_cols, kMaxPackedBFloats / padded_k / kern.nr * kern.nr));
  // A B in memory declared constant (inference weights) is packed once, in
  // the first call that reads it, and read packed by every call after.
  std::shared_ptr<const PackedOperand> prepacked;
  // (Checked first: the packing function below would be built, and
  // allocated, on every call.)
  if (any_declared_constant() && !trans_b && alpha == 1.0f && group_cols >= n && group_k >= k) {
    prepacked = packed_constant_operand(&kern, b, ldb, k, n, static_cast<std::size_t>(prepacked_b_floats(kern, k, n)),
                                        [&](float* out) { prepack_b(kern, b, ldb, k, n, out); });
  }
  for (std::int64_t col_begin = 0; col_begin < n; col_begin += group_cols) {
    for (std::int64_t k_begin = 0; k_begin < k; k_begin += group_k) {
      Plan plan(kern, op, m, col_begin, std::min(group_cols, n - col_begin), k_begin, std::min(group_k, k - k_begin),
                k_begin == 0 ? beta : 1.0f, threads);
      plan.stream_c = stream_c && k_begin + group_k >= k;
      if (k_begin + group_k >= k) plan.epilogue = epilogue;
      if (prepacked) plan.use_prepacked_b(prepacked->data());
      if (!plan.unpacked_b && !prepacked) plan.packed_b = packed_b_buffer(plan.b_slices() * plan.slice_floats);
      plan.set_pack_pieces(threads);
      WorkCounters work(plan.tiles());
      if (threads == 1) {
        run_worker(plan, work);
      } else {
        parallel_run([&](int) { run_worker(plan, work); });
      }
    }
  }
}

}  // namespace

namespace {

// A C of at least the L3 cache of these machines (32 MiB) that is not read
// (beta 0) is written past the caches: the caller cannot find it in cache
// afterwards anyway, and streaming saves the read-for-ownership of each line.
bool streams_c(std::int64_t m, std::int64_t n, float beta) {
  constexpr std::int64_t kStreamThresholdBytes = std::int64_t{32} << 20;
  return beta == 0.0f && m * n * std::int64_t{sizeof(float)} >= kStreamThresholdBytes;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  run_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, streams_c(m, n, beta));
}

void sgemm_stream_c(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                    const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  run_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc, true);
}

void sgemm_epilogue(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                    const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                    std::int64_t ldc, const GemmEpilogue& epilogue, bool stream_c) {
  CStore store;
  store.scale = epilogue.scale;
  store.shift = epilogue.shift;
  store.relu6 = epilogue.relu6;
  run_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
            (stream_c && beta == 0.0f) || streams_c(m, n, beta), store);
}

}  // namespace petal::cpu
