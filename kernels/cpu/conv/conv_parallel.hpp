// Deterministic work splitting for the convolution-family drivers: a range
// is cut into a fixed number of contiguous chunks (a function of the size
// and the thread count only), so per-chunk partial sums, added up in chunk
// order, give the same result on every run with the same thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "core/thread_pool.hpp"

namespace petal::cpu {

// How many chunks to cut `items` into: at most one per thread, each with at
// least `min_items` (and at least one chunk).
inline std::int64_t chunk_count(std::int64_t items, std::int64_t min_items) {
  const std::int64_t by_size = items / std::max<std::int64_t>(min_items, 1);
  return std::clamp<std::int64_t>(by_size, 1, in_parallel_region() ? 1 : num_threads());
}

// Runs fn(chunk_index, begin, end) for `chunks` contiguous pieces of
// [0, total), in parallel.
template <class Fn>
void for_each_chunk(std::int64_t total, std::int64_t chunks, Fn&& fn) {
  parallel_for(0, chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) fn(c, total * c / chunks, total * (c + 1) / chunks);
  });
}

// Smallest multiple of both channels and lanes: per-channel parameters
// expanded to this period let channel kernels run whole vectors on any width.
inline std::int64_t channel_period(std::int64_t channels, std::int64_t lanes) {
  return std::lcm(channels, lanes);
}

}  // namespace petal::cpu
