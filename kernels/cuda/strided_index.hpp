// Index math of the CUDA kernels: an operand set (output and inputs) over
// one shape, each with its own element strides (0 on broadcast axes), merged
// as kernels/portable/strided_loop.hpp merges them for the CPU, in
// fixed-size arrays a kernel can take by value. A kernel maps a linear
// C-order position to each operand's offset. Plain C++ (host tests run the
// same code as the device).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/shape.hpp"
#include "kernels/portable/host_device.hpp"
#include "kernels/portable/strided_loop.hpp"

namespace petal::cuda {

// Axes left after merging; more is a ShapeError naming the op.
inline constexpr int kMaxDims = 8;

template <int N>
struct StridedIndexer {
  int ndim = 1;
  // Positions fit in 32 bits: the divisions (the costly part on a GPU) run
  // on 32-bit integers.
  bool index32 = true;
  std::int64_t sizes[kMaxDims] = {1};
  std::int64_t strides[N][kMaxDims] = {};

  // Each operand's element offset of C-order position `linear`.
  PETAL_HD_INLINE void offsets(std::int64_t linear, std::int64_t (&out)[N]) const {
    if (ndim == 1) {
      for (int k = 0; k < N; ++k) out[k] = linear * strides[k][0];
      return;
    }
    if (index32)
      split<std::uint32_t>(static_cast<std::uint32_t>(linear), out);
    else
      split<std::int64_t>(linear, out);
  }

 private:
  // Peels the axes off from the innermost; the outermost takes the rest.
  template <class I>
  PETAL_HD_INLINE void split(I rest, std::int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d > 0; --d) {
      const I size = static_cast<I>(sizes[d]);
      const I i = rest % size;
      rest /= size;
      for (int k = 0; k < N; ++k) out[k] += static_cast<std::int64_t>(i) * strides[k][d];
    }
    for (int k = 0; k < N; ++k) out[k] += static_cast<std::int64_t>(rest) * strides[k][0];
  }
};

// Builds the indexer (host only); strides[k] has shape.size() entries.
template <int N>
StridedIndexer<N> make_indexer(const char* op, const Shape& shape, const Strides (&strides)[N]) {
  std::array<Strides, N> operands;
  for (int k = 0; k < N; ++k) operands[k] = strides[k];
  const kernels::StridedLoop<N> loop = kernels::make_strided_loop<N>(shape, operands);
  const int ndim = static_cast<int>(loop.shape.size());
  PETAL_CHECK(ndim <= kMaxDims, ShapeError, op, ": shape ", shape_str(shape), " has more than ", kMaxDims,
              " axes that cannot be merged; the CUDA kernels support at most ", kMaxDims);
  StridedIndexer<N> ix;
  ix.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    ix.sizes[d] = loop.shape[d];
    for (int k = 0; k < N; ++k) ix.strides[k][d] = loop.strides[k][d];
  }
  ix.index32 = shape_numel(shape) <= std::int64_t{0xffffffff};
  return ix;
}

}  // namespace petal::cuda
