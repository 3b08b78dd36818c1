// One persistent pool of worker threads for every parallel kernel.
// PETAL_NUM_THREADS overrides the default (the number of cores).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace petal {

// Threads that parallel_for uses, the calling thread included.
int num_threads();
// Changes the thread count (restarts the pool); n < 1 means "number of cores".
void set_num_threads(int n);

// Splits [begin, end) into at most num_threads() contiguous chunks of at least
// `grain` items and runs fn(chunk_begin, chunk_end) on them in parallel; the
// caller and the pool threads claim chunks until none is left, so a thread
// that starts late finds its share done by the others. The split depends only
// on the range, the grain and the thread count, so results are reproducible
// for a given thread count. Calls from inside a parallel region run serially.
// An exception thrown by fn is rethrown in the caller (kernels should not
// throw).
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

// Items [0, count) (count < 2^32) handed out one at a time, from the front
// to some threads and from the back to others, until the two ends meet.
// Each thread walks its end in order, so what it computes next continues
// what it computed last, and the threads finish within an item of each
// other however late one starts or however slowly it runs.
class TwoEndedRange {
 public:
  explicit TwoEndedRange(std::int64_t count = 0) { reset(count); }
  void reset(std::int64_t count) { ends_.store(static_cast<std::uint64_t>(count) << 32, std::memory_order_relaxed); }
  // The next item from the front (or the back), or -1 when none is left.
  std::int64_t take(bool from_back);

 private:
  std::atomic<std::uint64_t> ends_{0};  // back << 32 | front
};

// Cuts [begin, end) into pieces of `piece` items (the last may be shorter)
// that the threads claim one at a time, the calling thread from the front
// and the first worker from the back (TwoEndedRange; further workers
// alternate), each calling fn(piece_begin, piece_end). A thread that
// starts late or runs slowly takes fewer, and each thread's pieces stay
// together (the calling thread's at the front, as in parallel_for's first
// chunk), so a next step split the same way finds its rows in its own
// cache. Unlike parallel_for, how many pieces a thread gets varies from
// call to call: only for work whose result does not depend on which thread
// computes which piece. Serial inside a parallel region, or with one thread
// (a single call over the whole range).
void parallel_for_pieces(std::int64_t begin, std::int64_t end, std::int64_t piece,
                         const std::function<void(std::int64_t, std::int64_t)>& fn);

// Runs fn(thread_index) on the caller (index 0) and on each pool thread that
// starts before the caller has returned from fn (indices 1, 2, ... in the
// order they join, at most num_threads() - 1 of them), then waits for those.
// fn must claim its work from shared counters, since a thread that wakes late
// may not run it at all.
void parallel_run(const std::function<void(int)>& fn);

// True inside a parallel_for/parallel_run body.
bool in_parallel_region();

}  // namespace petal
