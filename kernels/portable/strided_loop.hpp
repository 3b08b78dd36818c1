// Index geometry shared by the CPU ops and the CUDA kernels (host code):
// NumPy broadcasting as strides, and the loop over an operand set (output
// and inputs, each with its own strides) after dropping size-1 axes and
// merging axes that are contiguous for every operand, so the innermost run
// is as long as possible. The CPU walks the merged loop in runs
// (kernels/ops_common.hpp, for_each_run); the CUDA kernels map a linear
// position to offsets through it (kernels/cuda/strided_index.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/shape.hpp"

namespace petal::kernels {

// Strides of a tensor of `shape_of_t` viewed as broadcast to `shape` (0 on
// broadcast axes), aligned to the right as in NumPy.
inline Strides broadcast_strides(const Shape& shape_of_t, const Strides& strides_of_t, const Shape& shape) {
  const std::size_t lead = shape.size() - shape_of_t.size();
  Strides out(shape.size(), 0);
  for (std::size_t i = 0; i < shape_of_t.size(); ++i)
    out[lead + i] = shape_of_t[i] == shape[lead + i] ? strides_of_t[i] : 0;
  return out;
}

// The merged loop of N operands; at least one axis (a single element is
// shape [1] with stride 1).
template <int N>
struct StridedLoop {
  Shape shape;
  std::array<Strides, N> strides;
  std::int64_t inner_stride(int operand) const { return strides[operand].back(); }
};

// strides[k] has shape.size() entries.
template <int N>
StridedLoop<N> make_strided_loop(const Shape& shape, const std::array<Strides, N>& strides) {
  StridedLoop<N> loop;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool mergeable = !loop.shape.empty();
    for (int k = 0; k < N && mergeable; ++k) mergeable = loop.strides[k].back() == strides[k][d] * shape[d];
    if (mergeable) {
      loop.shape.back() *= shape[d];
      for (int k = 0; k < N; ++k) loop.strides[k].back() = strides[k][d];
    } else {
      loop.shape.push_back(shape[d]);
      for (int k = 0; k < N; ++k) loop.strides[k].push_back(strides[k][d]);
    }
  }
  if (loop.shape.empty()) {  // one element
    loop.shape.push_back(1);
    for (int k = 0; k < N; ++k) loop.strides[k].push_back(1);
  }
  return loop;
}

}  // namespace petal::kernels
