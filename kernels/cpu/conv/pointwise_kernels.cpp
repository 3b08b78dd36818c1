// Weight gradient of a 1x1 convolution, dw[Cin, Cout] += x^T dy over a run
// of pixels, compiled once per ISA. A GEMM with tiny M and N and a huge K
// spends its time packing operands that are each used only Cin or Cout
// times; this kernel reads x and dy in place instead, block by block of
// pixels (kept in L2), and accumulates 4 x 4-vector tiles of dw in
// registers.
#include <vector>

#include "kernels/cpu/conv/conv_simd.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);
constexpr std::int64_t kPixelBlock = 256;

// dw[ci0 .. ci0+MI, co0 .. co0+NJ*L] += sum over pixels [p0, p1).
template <int MI, int NJ>
void tile(const float* x, const float* dy, std::int64_t p0, std::int64_t p1, std::int64_t cin, std::int64_t cout,
          std::int64_t ci0, std::int64_t co0, float* dw) {
  V acc[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) acc[i][j] = vbroadcast(0.0f);
  for (std::int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * cin + ci0;
    const float* gp = dy + p * cout + co0;
    V g[NJ];
    for (int j = 0; j < NJ; ++j) g[j] = vload(gp + j * L);
    for (int i = 0; i < MI; ++i) {
      const V xv = vbroadcast(xp[i]);
      for (int j = 0; j < NJ; ++j) acc[i][j] = vfma(xv, g[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) {
      float* d = dw + (ci0 + i) * cout + co0 + j * L;
      vstore(d, vload(d) + acc[i][j]);
    }
}

template <int MI>
void row_tiles(const float* x, const float* dy, std::int64_t p0, std::int64_t p1, std::int64_t cin,
               std::int64_t cout, std::int64_t cout_vec, std::int64_t ci0, float* dw) {
  std::int64_t co = 0;
  for (; co + 4 * L <= cout_vec; co += 4 * L) tile<MI, 4>(x, dy, p0, p1, cin, cout, ci0, co, dw);
  for (; co + 2 * L <= cout_vec; co += 2 * L) tile<MI, 2>(x, dy, p0, p1, cin, cout, ci0, co, dw);
  for (; co + L <= cout_vec; co += L) tile<MI, 1>(x, dy, p0, p1, cin, cout, ci0, co, dw);
}

// dw [cin, cout] += x^T dy. Narrow outputs take taller tiles so each loaded
// dy vector feeds more FMAs. Ragged columns (cout not a multiple of the
// vector width) are copied per pixel block into a zero-padded one-vector-wide
// buffer and run through the same tiles.
void weight_grad(const float* x, const float* dy, std::int64_t pixels, std::int64_t cin, std::int64_t cout,
                 float* dw) {
  const std::int64_t cout_vec = cout / L * L, tail = cout - cout_vec;
  const bool narrow = cout_vec < 4 * L;
  std::vector<float> tail_dy, tail_dw;
  if (tail > 0) {
    tail_dy.assign(static_cast<std::size_t>(kPixelBlock * L), 0.0f);
    tail_dw.assign(static_cast<std::size_t>(cin * L), 0.0f);
  }
  for (std::int64_t p0 = 0; p0 < pixels; p0 += kPixelBlock) {
    const std::int64_t p1 = std::min(pixels, p0 + kPixelBlock);
    std::int64_t ci = 0;
    if (narrow)
      for (; ci + 8 <= cin; ci += 8) row_tiles<8>(x, dy, p0, p1, cin, cout, cout_vec, ci, dw);
    for (; ci + 4 <= cin; ci += 4) row_tiles<4>(x, dy, p0, p1, cin, cout, cout_vec, ci, dw);
    for (; ci < cin; ++ci) row_tiles<1>(x, dy, p0, p1, cin, cout, cout_vec, ci, dw);
    if (tail > 0) {
      for (std::int64_t p = p0; p < p1; ++p)
        for (std::int64_t j = 0; j < tail; ++j) tail_dy[static_cast<std::size_t>((p - p0) * L + j)] = dy[p * cout + cout_vec + j];
      const float* x_block = x + p0 * cin;
      std::int64_t c = 0;
      for (; c + 8 <= cin; c += 8) tile<8, 1>(x_block, tail_dy.data(), 0, p1 - p0, cin, L, c, 0, tail_dw.data());
      for (; c < cin; ++c) tile<1, 1>(x_block, tail_dy.data(), 0, p1 - p0, cin, L, c, 0, tail_dw.data());
    }
  }
  for (std::int64_t c = 0; c < cin && tail > 0; ++c)
    for (std::int64_t j = 0; j < tail; ++j) dw[c * cout + cout_vec + j] += tail_dw[static_cast<std::size_t>(c * L + j)];
}

}  // namespace

extern const PointwiseKernels pointwise_table;
const PointwiseKernels pointwise_table{weight_grad};

}  // namespace petal::cpu::PETAL_ISA_NS
