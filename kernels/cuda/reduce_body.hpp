// The CUDA reductions' fold loop (host and device) and plan (host), both
// run by the host tests too. The combine steps and their CPU semantics (max
// and argmax skip NaN, argmax keeps the first of equal maxima) are
// kernels/portable/reduce_ops.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/strided_index.hpp"
#include "kernels/portable/host_device.hpp"
#include "kernels/portable/reduce_ops.hpp"

namespace petal::cuda {

// Sums accumulate in double; max in the element type.
template <class T, kernels::ReduceOp kOp> struct ReduceAcc { using type = double; };
template <class T> struct ReduceAcc<T, kernels::ReduceOp::Max> { using type = T; };

// Folds the input elements j = begin, begin + step, ... < end of the output
// whose first element is in[base] into acc (every reduction kernel's loop).
template <kernels::ReduceOp kOp, class Acc, class T>
PETAL_HD_INLINE Acc reduce_fold(Acc acc, const T* in, std::int64_t base, const StridedIndexer<1>& inner,
                                std::int64_t begin, std::int64_t end, std::int64_t step = 1) {
  for (std::int64_t j = begin; j < end; j += step) {
    std::int64_t off[1];
    inner.offsets(j, off);
    acc = kernels::reduce_combine<kOp>(acc, static_cast<Acc>(in[base + off[0]]));
  }
  return acc;
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
