// Index math shared by the CUDA kernels: an operand set (output and inputs)
// over one shape, each with its own element strides (0 on broadcast axes),
// after dropping size-1 axes and merging axes that are contiguous for every
// operand. A kernel maps a linear C-order position to each operand's offset.
// Plain C++ (host tests run the same code as the device).
#pragma once

#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/shape.hpp"
#include "kernels/cuda/host_device.hpp"

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
  StridedIndexer<N> ix;
  ix.ndim = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool mergeable = ix.ndim > 0;
    for (int k = 0; k < N && mergeable; ++k) mergeable = ix.strides[k][ix.ndim - 1] == strides[k][d] * shape[d];
    if (mergeable) {
      ix.sizes[ix.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim - 1] = strides[k][d];
      continue;
    }
    PETAL_CHECK(ix.ndim < kMaxDims, ShapeError, op, ": shape ", shape_str(shape), " has more than ", kMaxDims,
                " axes that cannot be merged; the CUDA kernels support at most ", kMaxDims);
    ix.sizes[ix.ndim] = shape[d];
    for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim] = strides[k][d];
    ++ix.ndim;
  }
  ix.index32 = shape_numel(shape) <= std::int64_t{0xffffffff};
  if (ix.ndim == 0) {  // a single element
    ix.ndim = 1;
    ix.sizes[0] = 1;
    for (int k = 0; k < N; ++k) ix.strides[k][0] = 1;
  }
  return ix;
}

// Strides of a tensor of `shape_of_t` viewed as broadcast to `shape` (0 on
// broadcast axes), aligned to the right as in NumPy.
inline Strides broadcast_to_strides(const Shape& shape_of_t, const Strides& strides_of_t, const Shape& shape) {
  const std::size_t lead = shape.size() - shape_of_t.size();
  Strides out(shape.size(), 0);
  for (std::size_t i = 0; i < shape_of_t.size(); ++i)
    out[lead + i] = shape_of_t[i] == shape[lead + i] ? strides_of_t[i] : 0;
  return out;
}

}  // namespace petal::cuda
