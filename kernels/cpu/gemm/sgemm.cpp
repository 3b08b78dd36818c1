// sgemm driver: Goto/BLIS-style cache blocking around the per-ISA packing
// and micro-kernels of sgemm_kernels.cpp.
//
//   for each nc-wide column block of B
//     for each kc-deep slice of K
//       pack B[kc, nc] (alpha folded in), shared by all threads  -> L2
//       threads split the rows of C (or, for short M, the columns);
//       each walks MR-row panels of A over the packed B slice:
//         A read in place (rows of A, prefetched a panel ahead), or packed
//         mc rows at a time when A is transposed and N is wide.
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
#include <utility>

#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/gemm/sgemm_kernels.hpp"
#include "kernels/cpu/isa.hpp"

namespace petal::cpu {
namespace {

// Below this many multiply-adds (128^3, about 20 us on one Zen 5 core),
// waking the pool's second thread costs about as much as it saves.
constexpr std::int64_t kParallelMinMacs = std::int64_t{1} << 21;

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
                   const float* packed_b, float beta, bool unpacked_a) {
  const float* b_slice = packed_b + (col_begin / kern.nr) * kc * kern.nr;
  float* c_block = op.c + row_begin * op.ldc + jc + col_begin;
  if (unpacked_a) {
    float* edge_panel = packed_a_buffer(kern.mr * kc);
    kern.macro_kernel_unpacked_a(op.trans_a, row_end - row_begin, col_end - col_begin, kc, op.a_at(row_begin, pc),
                                 op.lda, b_slice, c_block, op.ldc, beta, edge_panel);
    return;
  }
  float* packed_a = packed_a_buffer(ceil_div(std::min(kern.mc, row_end - row_begin), kern.mr) * kern.mr * kc);
  for (std::int64_t ic = row_begin; ic < row_end; ic += kern.mc) {
    const std::int64_t mc = std::min(kern.mc, row_end - ic);
    kern.pack_a(op.trans_a, op.a_at(ic, pc), op.lda, mc, kc, packed_a);
    kern.macro_kernel(mc, col_end - col_begin, kc, packed_a, b_slice, op.c + ic * op.ldc + jc + col_begin, op.ldc,
                      beta);
  }
}

// K and N cut into equal blocks no larger than the kernel's kc / nc: 320 =
// 160 + 160 rather than 256 + 64, so no slice is short enough for the C
// tile's load and store to outweigh its K loop.
struct Blocking {
  std::int64_t kc, nc;
};
Blocking balanced_blocks(const SgemmKernels& kern, std::int64_t n, std::int64_t k) {
  const std::int64_t k_slices = ceil_div(k, kern.kc);
  const std::int64_t n_blocks = ceil_div(n, kern.nc);
  return {ceil_div(k, k_slices), std::min(kern.nc, ceil_div(ceil_div(n, n_blocks), kern.nr) * kern.nr)};
}

// Spin barrier for the threads of one sgemm call. Spinning (with a yield
// after a while) keeps both cores hot between K slices; a sleeping wake-up on
// these VMs costs tens of microseconds, as much as a whole small GEMM.
class SpinBarrier {
 public:
  explicit SpinBarrier(int threads) : threads_(threads) {}
  void arrive_and_wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spin = 0; generation_.load(std::memory_order_acquire) == generation; ++spin) {
      if (spin < 1024) {  // about 15 us of PAUSE on Zen, then give the core away
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  const int threads_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// [begin, end) of `count` items for thread `index` of `threads`, balanced.
std::pair<std::int64_t, std::int64_t> share(std::int64_t count, int index, int threads) {
  const std::int64_t base = count / threads, extra = count % threads;
  const std::int64_t begin = index * base + std::min<std::int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

// The blocked loops for one thread of `threads` (thread 0 alone when serial).
// packed_b holds two slices: while one thread still computes on slice s, the
// other may already pack slice s + 1 into the other half, so one barrier per
// slice suffices (a thread can only reach the packing of slice s + 2 after
// everyone has passed the barrier of slice s + 1, i.e. finished slice s).
void sgemm_thread(const SgemmKernels& kern, const Operands& op, std::int64_t m, std::int64_t n, std::int64_t k,
                  float beta, int index, int threads, float* const packed_b[2], SpinBarrier* barrier) {
  const std::int64_t m_tiles = ceil_div(m, kern.mr);
  // Reading A in place saves the packing pass, which costs as much as the
  // arithmetic when N is small (1x1 convolutions: M huge, N = 24..1280).
  // Rows of A stream well (software prefetch); a transposed A is read a
  // short row per K step, so it is packed unless few B panels share it.
  const bool unpacked_a = !op.trans_a || n <= 2 * kern.nr;
  int slice = 0;
  const Blocking blocks = balanced_blocks(kern, n, k);
  for (std::int64_t jc = 0; jc < n; jc += blocks.nc) {
    const std::int64_t nc = std::min(blocks.nc, n - jc);
    const std::int64_t n_panels = ceil_div(nc, kern.nr);
    for (std::int64_t pc = 0; pc < k; pc += blocks.kc, ++slice) {
      const std::int64_t kc = std::min(blocks.kc, k - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;  // later K slices accumulate
      float* slice_b = packed_b[slice % 2];
      const auto [p0, p1] = share(n_panels, index, threads);
      if (p0 < p1) pack_b_panels(kern, op, pc, kc, jc, nc, p0, p1, slice_b);
      if (threads > 1) barrier->arrive_and_wait();

      if (threads == 1) {
        compute_block(kern, op, pc, kc, jc, 0, m, 0, nc, slice_b, beta_here, unpacked_a);
      } else if (m_tiles >= 2 * threads || n_panels < threads) {
        // Split rows: each thread gets whole register tiles of C.
        const auto [t0, t1] = share(m_tiles, index, threads);
        if (t0 < t1)
          compute_block(kern, op, pc, kc, jc, t0 * kern.mr, std::min(t1 * kern.mr, m), 0, nc, slice_b, beta_here, unpacked_a);
      } else {
        // Short and wide: split columns; each thread packs the (small) A itself.
        const auto [q0, q1] = share(n_panels, index, threads);
        if (q0 < q1)
          compute_block(kern, op, pc, kc, jc, 0, m, q0 * kern.nr, std::min(q1 * kern.nr, nc), slice_b, beta_here, unpacked_a);
      }
    }
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

  const Blocking blocks = balanced_blocks(kern, n, k);
  const std::int64_t slice_floats = ceil_div(blocks.nc, kern.nr) * kern.nr * blocks.kc;
  float* const b_base = packed_b_buffer(2 * slice_floats);
  float* const packed_b[2] = {b_base, b_base + slice_floats};
  if (serial) {
    sgemm_thread(kern, op, m, n, k, beta, 0, 1, packed_b, nullptr);
    return;
  }
  const int threads = num_threads();
  SpinBarrier barrier(threads);
  parallel_run([&](int index) {
    if (index < threads) sgemm_thread(kern, op, m, n, k, beta, index, threads, packed_b, &barrier);
  });
}

}  // namespace petal::cpu
