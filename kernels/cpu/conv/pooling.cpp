// Pooling drivers: pick the active ISA's table and split rows over threads.
#include "kernels/cpu/conv/pooling.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.hpp"
#include "kernels/cpu/conv/pool_tables.hpp"
#include "kernels/cpu/isa.hpp"

namespace petal::cpu {

namespace isa_scalar { extern const PoolKernels pool_table; }
namespace isa_avx2 { extern const PoolKernels pool_table; }
namespace isa_avx512 { extern const PoolKernels pool_table; }

const PoolKernels& pool_kernels() {
  return select_table(isa_scalar::pool_table, isa_avx2::pool_table, isa_avx512::pool_table);
}

namespace {

// Rows per task such that a task reads some tens of kilobytes: pooling is
// memory bound, and tiny tasks would cost more to hand out than to run.
std::int64_t row_grain(std::int64_t elements_per_row) {
  constexpr std::int64_t kElementsPerTask = 16 * 1024;
  return std::max<std::int64_t>(1, kElementsPerTask / std::max<std::int64_t>(elements_per_row, 1));
}

std::int64_t output_row_grain(const ConvGeometry& g) { return row_grain(g.out_w * g.out_c * g.taps()); }
// A backward input row gathers from about kernel_h / stride_h output rows.
std::int64_t input_row_grain(const ConvGeometry& g) {
  return row_grain(g.in_w * g.in_c * std::max<std::int64_t>(g.kernel_h / g.stride_h, 1));
}

}  // namespace

void avg_pool_forward(const float* x, float* y, const ConvGeometry& g) {
  const PoolKernels& k = pool_kernels();
  parallel_for(0, g.batch * g.out_h, output_row_grain(g),
               [&](std::int64_t r0, std::int64_t r1) { k.avg_forward(x, y, g, r0, r1); });
}

void avg_pool_backward(const float* dy, float* dx, const ConvGeometry& g) {
  const PoolKernels& k = pool_kernels();
  parallel_for(0, g.batch * g.in_h, input_row_grain(g),
               [&](std::int64_t r0, std::int64_t r1) { k.avg_backward(dy, dx, g, r0, r1); });
}

void max_pool_forward(const float* x, float* y, const ConvGeometry& g) {
  const PoolKernels& k = pool_kernels();
  parallel_for(0, g.batch * g.out_h, output_row_grain(g),
               [&](std::int64_t r0, std::int64_t r1) { k.max_forward(x, y, g, r0, r1); });
}

void max_pool_backward(const float* dy, const float* x, float* dx, const ConvGeometry& g) {
  const PoolKernels& k = pool_kernels();
  // Pass 1 finds each window's first maximum (output rows), pass 2 gathers
  // the gradients into input rows.
  std::vector<float> tap(static_cast<std::size_t>(g.output_pixels() * g.out_c));
  parallel_for(0, g.batch * g.out_h, output_row_grain(g),
               [&](std::int64_t r0, std::int64_t r1) { k.max_argmax(x, tap.data(), g, r0, r1); });
  parallel_for(0, g.batch * g.in_h, input_row_grain(g),
               [&](std::int64_t r0, std::int64_t r1) { k.max_backward(dy, tap.data(), dx, g, r0, r1); });
}

ConvGeometry global_pool_geometry(std::int64_t batch, std::int64_t h, std::int64_t w, std::int64_t c) {
  ConvGeometry g;
  g.batch = batch, g.in_h = h, g.in_w = w, g.in_c = c;
  g.out_h = 1, g.out_w = 1, g.out_c = c;
  g.kernel_h = h, g.kernel_w = w;
  return g;
}

void zero_pad_rows(const void* src, void* dst, std::size_t element_size, std::int64_t batch, std::int64_t h,
                   std::int64_t w, std::int64_t c, const PadBorders& pad) {
  const std::int64_t out_h = h + pad.top + pad.bottom;
  const std::size_t pixel = element_size * static_cast<std::size_t>(c);
  const std::size_t left = pixel * static_cast<std::size_t>(pad.left), right = pixel * static_cast<std::size_t>(pad.right);
  const std::size_t interior = pixel * static_cast<std::size_t>(w), out_row = left + interior + right;
  const auto* in = static_cast<const unsigned char*>(src);
  auto* out = static_cast<unsigned char*>(dst);
  parallel_for(0, batch * out_h, row_grain(static_cast<std::int64_t>(out_row / element_size)),
               [&](std::int64_t r0, std::int64_t r1) {
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t n = r / out_h, iy = r % out_h - pad.top;
                   unsigned char* row = out + static_cast<std::size_t>(r) * out_row;
                   if (iy < 0 || iy >= h) {
                     std::memset(row, 0, out_row);
                     continue;
                   }
                   std::memset(row, 0, left);
                   std::memcpy(row + left, in + static_cast<std::size_t>(n * h + iy) * interior, interior);
                   std::memset(row + left + interior, 0, right);
                 }
               });
}

void crop_padding_rows(const void* src, void* dst, std::size_t element_size, std::int64_t batch, std::int64_t h,
                       std::int64_t w, std::int64_t c, const PadBorders& pad) {
  const std::int64_t padded_h = h + pad.top + pad.bottom;
  const std::size_t pixel = element_size * static_cast<std::size_t>(c);
  const std::size_t left = pixel * static_cast<std::size_t>(pad.left);
  const std::size_t interior = pixel * static_cast<std::size_t>(w);
  const std::size_t padded_row = left + interior + pixel * static_cast<std::size_t>(pad.right);
  const auto* in = static_cast<const unsigned char*>(src);
  auto* out = static_cast<unsigned char*>(dst);
  parallel_for(0, batch * h, row_grain(static_cast<std::int64_t>(interior / element_size)),
               [&](std::int64_t r0, std::int64_t r1) {
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t n = r / h, iy = r % h;
                   const std::size_t from = static_cast<std::size_t>(n * padded_h + pad.top + iy) * padded_row + left;
                   std::memcpy(out + static_cast<std::size_t>(r) * interior, in + from, interior);
                 }
               });
}

}  // namespace petal::cpu
