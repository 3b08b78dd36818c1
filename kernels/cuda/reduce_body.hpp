// Per-element steps of the CUDA reductions (host and device), with the CPU
// semantics of kernels/ops_reduce.cpp: max and argmax skip NaN (a NaN never
// compares greater), argmax keeps the first of equal maxima.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cuda/host_device.hpp"
#include "kernels/cuda/strided_index.hpp"

namespace petal::cuda {

// Sums accumulate in double; max in the element type.
template <class T, bool kMax> struct ReduceAcc { using type = double; };
template <class T> struct ReduceAcc<T, true> { using type = T; };

template <class Acc, bool kMax>
PETAL_HD_INLINE Acc reduce_identity() {
  if constexpr (kMax) return -std::numeric_limits<Acc>::infinity();
  else return Acc(0);
}

template <bool kMax, class Acc>
PETAL_HD_INLINE Acc reduce_combine(Acc acc, Acc v) {
  if constexpr (kMax) return v > acc ? v : acc;
  else return acc + v;
}

// One step of the argmax scan along an axis: element j with value v.
template <class T>
PETAL_HD_INLINE void argmax_step(T& best, std::int64_t& index, T v, std::int64_t j) {
  if (j == 0 || v > best || best != best) {
    best = v;
    index = j;
  }
}

// How a reduction walks its input: output o (C order of the kept axes)
// starts at outer.offsets(o) and adds inner.offsets(j) for j < n_inner
// (C order of the reduced axes). Host only.
//
// When the innermost kept axis has stride 1 (sums over leading or middle
// axes of NHWC data: bias gradients, pooling), neighbouring outputs are
// neighbouring addresses: the kernel then gives each thread one output and
// one of `chunks` consecutive ranges of j (reads coalesce across threads),
// writes a partial per (chunk, output) and adds the partials in chunk order.
struct ReducePlan {
  StridedIndexer<1> outer, inner;
  std::int64_t n_out = 1, n_inner = 1;
  std::int64_t chunks = 0;  // > 0: the column scheme with this many ranges of j
  std::int64_t chunk_len = 0;
  // Few outputs with many elements each (a sum of everything): each output's
  // j range is split over `split_chunks` blocks, whose block-reduced partials
  // are then added in order. 0: one block per output.
  std::int64_t split_chunks = 0;
  std::int64_t split_len = 0;
};

inline ReducePlan make_reduce_plan(const Shape& shape, const Strides& strides, const std::vector<bool>& reduced) {
  Shape kept_shape, reduced_shape;
  Strides kept_strides[1], reduced_strides[1];
  for (std::size_t d = 0; d < shape.size(); ++d) {
    (reduced[d] ? reduced_shape : kept_shape).push_back(shape[d]);
    (reduced[d] ? reduced_strides[0] : kept_strides[0]).push_back(strides[d]);
  }
  ReducePlan plan;
  plan.outer = make_indexer<1>("reduce", kept_shape, kept_strides);
  plan.inner = make_indexer<1>("reduce", reduced_shape, reduced_strides);
  plan.n_out = shape_numel(kept_shape);
  plan.n_inner = shape_numel(reduced_shape);
  const int last = plan.outer.ndim - 1;
  const bool unit_inner = plan.outer.strides[0][last] == 1 && plan.outer.sizes[last] >= 32;
  if (unit_inner && plan.n_inner >= 64 && plan.n_out > 1) {
    // Enough (chunk, output) pairs to fill a large GPU, chunks of >= 64 rows.
    constexpr std::int64_t kTargetThreads = std::int64_t{1} << 18, kMinChunk = 64, kMaxChunks = 4096;
    std::int64_t chunks = (kTargetThreads + plan.n_out - 1) / plan.n_out;
    chunks = std::min(chunks, (plan.n_inner + kMinChunk - 1) / kMinChunk);
    chunks = std::max<std::int64_t>(1, std::min(chunks, kMaxChunks));
    plan.chunk_len = (plan.n_inner + chunks - 1) / chunks;
    plan.chunks = (plan.n_inner + plan.chunk_len - 1) / plan.chunk_len;
  } else if (plan.n_out < 1024 && plan.n_inner >= 16384) {
    constexpr std::int64_t kTargetBlocks = 1024, kMinSplit = 4096;
    std::int64_t chunks = (kTargetBlocks + plan.n_out - 1) / plan.n_out;
    chunks = std::max<std::int64_t>(1, std::min(chunks, plan.n_inner / kMinSplit));
    plan.split_len = (plan.n_inner + chunks - 1) / chunks;
    plan.split_chunks = (plan.n_inner + plan.split_len - 1) / plan.split_len;
  }
  return plan;
}

}  // namespace petal::cuda
