// Threaded float32 pooling over the per-ISA kernels of pool_kernels.cpp, and
// the zero-padding row copies (any element size). Threads take output rows
// (forward) or input rows (backward, gathering), so every element is
// computed by one thread in a fixed order: results do not depend on the
// thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/conv/conv_geometry.hpp"

namespace petal::cpu {

// g.in_c == g.out_c; kernel_h/kernel_w are the pool size. Averages count the
// in-bounds elements only; the max gradient goes to the first maximum.
void avg_pool_forward(const float* x, float* y, const ConvGeometry& g);
void avg_pool_backward(const float* dy, float* dx, const ConvGeometry& g);
void max_pool_forward(const float* x, float* y, const ConvGeometry& g);
void max_pool_backward(const float* dy, const float* x, float* dx, const ConvGeometry& g);

// The one-window geometry of global average pooling over [batch, h, w, c]
// (output [batch, 1, 1, c]); feed it to avg_pool_forward/backward.
ConvGeometry global_pool_geometry(std::int64_t batch, std::int64_t h, std::int64_t w, std::int64_t c);

// Border sizes of a zero padding (or of the crop that undoes it).
struct PadBorders {
  std::int64_t top = 0, bottom = 0, left = 0, right = 0;
};
// dst [batch, h + top + bottom, w + left + right, c] = src [batch, h, w, c]
// surrounded by zeros; elements of element_size bytes, both contiguous.
void zero_pad_rows(const void* src, void* dst, std::size_t element_size, std::int64_t batch, std::int64_t h,
                   std::int64_t w, std::int64_t c, const PadBorders& pad);
// The inverse crop: dst [batch, h, w, c] = the interior of src
// [batch, h + top + bottom, w + left + right, c].
void crop_padding_rows(const void* src, void* dst, std::size_t element_size, std::int64_t batch, std::int64_t h,
                       std::int64_t w, std::int64_t c, const PadBorders& pad);

}  // namespace petal::cpu
