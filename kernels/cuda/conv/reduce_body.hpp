// The deterministic column reduction behind every per-channel sum of the
// CUDA conv family (BN statistics, BN gradients, bias gradients, depthwise
// kernel gradients): a [rows, columns] matrix of terms is summed down its
// rows in a fixed order that depends only on the shape, never on timing, so
// a run gives the same bits every time (no float atomics).
//
// Launch shape: blocks of kReduceThreadsX x kReduceThreadsY threads; block
// (bx, chunk) covers columns bx * kReduceThreadsX + tx and the rows of its
// chunk; thread row ty sums rows chunk_begin + ty, + kReduceThreadsY, ... in
// double; the block then adds its thread rows in order ty = 0, 1, ... and
// writes one partial per (chunk, column); a second kernel adds the partials
// of each column in chunk order. Sums are in double: BN variance of
// float32 data then loses nothing to cancellation.
#pragma once

#include <cstdint>

#include "kernels/portable/host_device.hpp"

namespace petal::cuda_body {

inline constexpr int kReduceThreadsX = 32;
inline constexpr int kReduceThreadsY = 8;

// Two sums per column (e.g. sum of g and of g * xhat).
struct Sum2 {
  double first = 0.0, second = 0.0;
};

PETAL_HD_INLINE Sum2 operator+(Sum2 a, Sum2 b) { return {a.first + b.first, a.second + b.second}; }

struct ReducePlan {
  std::int64_t rows = 0, columns = 0;
  std::int64_t chunks = 1, rows_per_chunk = 0;
  std::int64_t column_blocks() const { return (columns + kReduceThreadsX - 1) / kReduceThreadsX; }
};

// Enough chunks to give a large GPU a few thousand threads per column block
// row, few enough that the partials stay small; a pure function of the shape.
inline ReducePlan make_reduce_plan(std::int64_t rows, std::int64_t columns) {
  ReducePlan plan;
  plan.rows = rows, plan.columns = columns;
  const std::int64_t column_blocks = plan.column_blocks();
  std::int64_t max_chunks = 1024 / (column_blocks > 0 ? column_blocks : 1);
  if (max_chunks < 8) max_chunks = 8;
  std::int64_t chunks = (rows + 63) / 64;
  if (chunks > max_chunks) chunks = max_chunks;
  if (chunks < 1) chunks = 1;
  plan.rows_per_chunk = (rows + chunks - 1) / chunks;
  if (plan.rows_per_chunk < 1) plan.rows_per_chunk = 1;
  plan.chunks = (rows + plan.rows_per_chunk - 1) / plan.rows_per_chunk;
  if (plan.chunks < 1) plan.chunks = 1;
  return plan;
}

// What thread row `lane` of chunk `chunk` sums for `column`: term(row, column)
// over its rows in increasing order.
template <class Term>
PETAL_HD_INLINE Sum2 reduce_lane(const Term& term, std::int64_t rows, std::int64_t rows_per_chunk, std::int64_t chunk,
                                 int lane, std::int64_t column) {
  const std::int64_t begin = chunk * rows_per_chunk;
  std::int64_t end = begin + rows_per_chunk;
  if (end > rows) end = rows;
  Sum2 s;
  for (std::int64_t r = begin + lane; r < end; r += kReduceThreadsY) s = s + term(r, column);
  return s;
}

}  // namespace petal::cuda_body
