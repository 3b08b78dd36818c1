// Weight gradient of a 1x1 convolution, dw[Cin, Cout] += x^T dy over a run
// of pixels, compiled once per ISA. A GEMM with tiny M and N and a huge K
// spends its time packing operands that are each used only Cin or Cout
// times; this kernel reads x and dy in place instead.
//
// Pixels go in blocks; within a block, each group of 4 dy column vectors
// (kPixelBlock x 64 floats, 32 KiB: it stays in L1) meets every group of 6
// input channels in turn, accumulating a 6 x 4-vector tile of dw in
// registers (24 accumulators: 4 loads and 6 broadcasts per 24 multiply-adds).
// The first version walked all of dy's columns for each channel group; with
// 1280 output channels a block of dy (1.3 MiB) left L2 every time and the
// kernel ran at 60% of the FMA peak.
#include <vector>

#include "kernels/cpu/conv/conv_simd.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);
constexpr std::int64_t kPixelBlock = 128;
// Tile: kRows input channels x kCols dy vectors (AVX2's 16 registers: 6 x 2).
constexpr int kRows = 6;
constexpr int kCols = L >= 16 ? 4 : 2;

// The next pixel block's rows of x and dy, requested a line per pixel step
// of the tiles while this block computes: on the layers with many pixels
// (block_1_expand: 590k pixels, 264 MB of x and dy) the kernel waits on
// memory, and one core's hardware prefetchers stay well below what it can
// read.
struct BlockPrefetch {
  const char* x = nullptr;
  std::int64_t x_stride = 0, x_rows = 0;
  const char* dy = nullptr;
  std::int64_t dy_stride = 0, dy_lines_per_row = 0, dy_rows = 0;
  std::int64_t row = 0, line = 0;  // next dy line to request

  void step() {
    if (row >= dy_rows) return;
    __builtin_prefetch(dy + row * dy_stride + line * 64, 0, 3);
    if (line == 0 && row < x_rows) __builtin_prefetch(x + row * x_stride, 0, 3);
    if (++line == dy_lines_per_row) line = 0, ++row;
  }
};

// dw[ci0 .. ci0+MI, co0 .. co0+NJ*L] += sum over pixels [0, count).
template <int MI, int NJ>
void tile(const float* x, std::int64_t ldx, const float* dy, std::int64_t ldy, std::int64_t count, float* dw,
          std::int64_t ldw, BlockPrefetch& prefetch) {
  V acc[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) acc[i][j] = vbroadcast(0.0f);
  for (std::int64_t p = 0; p < count; ++p) {
    prefetch.step();
    const float* xp = x + p * ldx;
    const float* gp = dy + p * ldy;
    V g[NJ];
    for (int j = 0; j < NJ; ++j) g[j] = vload(gp + j * L);
    for (int i = 0; i < MI; ++i) {
      const V xv = vbroadcast(xp[i]);
      for (int j = 0; j < NJ; ++j) acc[i][j] = vfma(xv, g[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) {
      float* d = dw + i * ldw + j * L;
      vstore(d, vload(d) + acc[i][j]);
    }
}

// Every input channel against NJ dy vectors from column co.
template <int NJ>
void column_group(const float* x, std::int64_t ldx, const float* dy, std::int64_t ldy, std::int64_t count,
                  std::int64_t cin, float* dw, std::int64_t ldw, BlockPrefetch& prefetch) {
  std::int64_t ci = 0;
  for (; ci + kRows <= cin; ci += kRows) tile<kRows, NJ>(x + ci, ldx, dy, ldy, count, dw + ci * ldw, ldw, prefetch);
  for (; ci + 2 <= cin; ci += 2) tile<2, NJ>(x + ci, ldx, dy, ldy, count, dw + ci * ldw, ldw, prefetch);
  for (; ci < cin; ++ci) tile<1, NJ>(x + ci, ldx, dy, ldy, count, dw + ci * ldw, ldw, prefetch);
}

// Ragged columns (cout not a multiple of the vector width) are copied per
// pixel block into a zero-padded one-vector-wide buffer and run through the
// same tiles.
void weight_grad(const float* x, std::int64_t ldx, const float* dy, std::int64_t ldy, std::int64_t pixels,
                 std::int64_t cin, std::int64_t cout, float* dw, std::int64_t ldw) {
  const std::int64_t cout_vec = cout / L * L, tail = cout - cout_vec;
  std::vector<float> tail_dy, tail_dw;
  if (tail > 0) {
    tail_dy.assign(static_cast<std::size_t>(kPixelBlock * L), 0.0f);
    tail_dw.assign(static_cast<std::size_t>(cin * L), 0.0f);
  }
  for (std::int64_t p0 = 0; p0 < pixels; p0 += kPixelBlock) {
    const std::int64_t count = std::min(kPixelBlock, pixels - p0);
    const float* xb = x + p0 * ldx;
    const float* gb = dy + p0 * ldy;
    BlockPrefetch prefetch;
    const std::int64_t next_rows = std::min(kPixelBlock, pixels - p0 - count);
    if (next_rows > 0) {
      prefetch.x = reinterpret_cast<const char*>(xb + count * ldx);
      prefetch.x_stride = ldx * std::int64_t{sizeof(float)};
      prefetch.x_rows = next_rows;
      prefetch.dy = reinterpret_cast<const char*>(gb + count * ldy);
      prefetch.dy_stride = ldy * std::int64_t{sizeof(float)};
      prefetch.dy_lines_per_row = (cout * std::int64_t{sizeof(float)} + 63) / 64;
      prefetch.dy_rows = next_rows;
    }
    std::int64_t co = 0;
    for (; co + kCols * L <= cout_vec; co += kCols * L)
      column_group<kCols>(xb, ldx, gb + co, ldy, count, cin, dw + co, ldw, prefetch);
    if constexpr (kCols > 2)
      for (; co + 2 * L <= cout_vec; co += 2 * L)
        column_group<2>(xb, ldx, gb + co, ldy, count, cin, dw + co, ldw, prefetch);
    for (; co + L <= cout_vec; co += L) column_group<1>(xb, ldx, gb + co, ldy, count, cin, dw + co, ldw, prefetch);
    if (tail > 0) {
      for (std::int64_t p = 0; p < count; ++p)
        for (std::int64_t j = 0; j < tail; ++j)
          tail_dy[static_cast<std::size_t>(p * L + j)] = gb[p * ldy + cout_vec + j];
      column_group<1>(xb, ldx, tail_dy.data(), L, count, cin, tail_dw.data(), L, prefetch);
    }
  }
  for (std::int64_t c = 0; c < cin && tail > 0; ++c)
    for (std::int64_t j = 0; j < tail; ++j) dw[c * ldw + cout_vec + j] += tail_dw[static_cast<std::size_t>(c * L + j)];
}

}  // namespace

extern const PointwiseKernels pointwise_table;
const PointwiseKernels pointwise_table{weight_grad};

}  // namespace petal::cpu::PETAL_ISA_NS
