// The persistent thread pool: parallel_for coverage and chunking,
// parallel_for_pieces, nesting,
// exceptions, parallel_run and set_num_threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/thread_pool.hpp"

using namespace petal;

namespace {

// The chunks parallel_for hands out, sorted by start.
std::vector<std::pair<std::int64_t, std::int64_t>> chunks_of(std::int64_t begin, std::int64_t end,
                                                             std::int64_t grain) {
  std::mutex mutex;
  std::vector<std::pair<std::int64_t, std::int64_t>> chunks;
  parallel_for(begin, end, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::lock_guard<std::mutex> lock(mutex);
    chunks.emplace_back(lo, hi);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

// Restores the thread count a test changed.
struct ThreadCountGuard {
  int saved = num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

}  // namespace

TEST_CASE("parallel_for visits every index of the range exactly once") {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3, 4, 7}) {
    set_num_threads(threads);
    CHECK(num_threads() == threads);
    for (std::int64_t n : {0, 1, 2, 5, 64, 1000, 1023}) {
      for (std::int64_t grain : {1, 3, 100}) {
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(grain);
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        parallel_for(10, 10 + n, grain, [&](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t i = lo; i < hi; ++i) hits[static_cast<std::size_t>(i - 10)].fetch_add(1);
        });
        int wrong = 0;
        for (auto& h : hits) wrong += h.load() != 1;
        CHECK(wrong == 0);
      }
    }
  }
}

TEST_CASE("chunks are contiguous, balanced, respect the grain and depend only on the inputs") {
  ThreadCountGuard guard;
  set_num_threads(4);
  auto chunks = chunks_of(0, 10, 1);
  REQUIRE(chunks.size() == 4);
  // 10 items over 4 chunks: the first two get one more.
  CHECK(chunks == std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 3}, {3, 6}, {6, 8}, {8, 10}});
  // The grain limits the number of chunks: 10 items, grain 4 -> 3 chunks.
  CHECK(chunks_of(0, 10, 4).size() == 3);
  // Smaller than one grain: a single call on the whole range.
  CHECK(chunks_of(5, 9, 100) == std::vector<std::pair<std::int64_t, std::int64_t>>{{5, 9}});
  // Same inputs, same split, every time.
  for (int repeat = 0; repeat < 20; ++repeat) CHECK(chunks_of(0, 1001, 7) == chunks_of(0, 1001, 7));
  CHECK(chunks_of(3, 3, 1).empty());
  CHECK(chunks_of(5, 2, 1).empty());
}

TEST_CASE("TwoEndedRange hands out every item once, in order from each end") {
  TwoEndedRange range(5);
  CHECK(range.take(false) == 0);
  CHECK(range.take(true) == 4);
  CHECK(range.take(true) == 3);
  CHECK(range.take(false) == 1);
  CHECK(range.take(false) == 2);
  CHECK(range.take(false) == -1);
  CHECK(range.take(true) == -1);
  range.reset(0);
  CHECK(range.take(false) == -1);
  // Four threads, two from each end: every item exactly once, and each
  // thread's items in its end's order.
  range.reset(100000);
  std::vector<std::vector<std::int64_t>> taken(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::int64_t i; (i = range.take(t % 2 == 1)) >= 0;) taken[static_cast<std::size_t>(t)].push_back(i);
    });
  for (auto& t : threads) t.join();
  std::vector<int> hits(100000, 0);
  int out_of_order = 0;
  for (int t = 0; t < 4; ++t) {
    const auto& items = taken[static_cast<std::size_t>(t)];
    for (std::size_t i = 0; i < items.size(); ++i) {
      ++hits[static_cast<std::size_t>(items[i])];
      if (i > 0 && (t % 2 == 0 ? items[i] < items[i - 1] : items[i] > items[i - 1])) ++out_of_order;
    }
  }
  CHECK(out_of_order == 0);
  CHECK(std::count(hits.begin(), hits.end(), 1) == 100000);
}

TEST_CASE("parallel_for_pieces covers the range in pieces of the given size, serially when nested") {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3, 4}) {
    set_num_threads(threads);
    for (std::int64_t n : {0, 1, 5, 64, 1001}) {
      for (std::int64_t piece : {0, 1, 7, 64, 5000}) {
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(piece);
        std::mutex mutex;
        std::vector<std::pair<std::int64_t, std::int64_t>> pieces;
        parallel_for_pieces(3, 3 + n, piece, [&](std::int64_t lo, std::int64_t hi) {
          std::lock_guard<std::mutex> lock(mutex);
          pieces.emplace_back(lo, hi);
        });
        std::sort(pieces.begin(), pieces.end());
        if (n == 0) {
          CHECK(pieces.empty());
          continue;
        }
        // Contiguous from begin to end; every piece but the last is `piece`
        // long (one call over the whole range with one thread or one piece).
        const std::int64_t size = std::max<std::int64_t>(piece, 1);
        const bool whole = threads == 1 || n <= size;
        CHECK(pieces.size() == static_cast<std::size_t>(whole ? 1 : (n + size - 1) / size));
        std::int64_t at = 3;
        for (std::size_t i = 0; i < pieces.size(); ++i) {
          CHECK(pieces[i].first == at);
          if (!whole && i + 1 < pieces.size()) CHECK(pieces[i].second - pieces[i].first == size);
          at = pieces[i].second;
        }
        CHECK(at == 3 + n);
      }
    }
  }
  // Inside a parallel region: one call over the whole range, on the calling thread.
  set_num_threads(2);
  parallel_run([&](int index) {
    if (index != 0) return;
    int calls = 0;
    const std::thread::id self = std::this_thread::get_id();
    bool same_thread = true;
    parallel_for_pieces(0, 100, 10, [&](std::int64_t lo, std::int64_t hi) {
      ++calls;
      same_thread = same_thread && std::this_thread::get_id() == self && lo == 0 && hi == 100;
    });
    CHECK(calls == 1);
    CHECK(same_thread);
  });
}

TEST_CASE("work really runs on several threads, and the caller takes part") {
  ThreadCountGuard guard;
  set_num_threads(2);
  std::mutex mutex;
  std::vector<std::thread::id> ids;
  std::atomic<int> arrived{0};
  parallel_for(0, 2, 1, [&](std::int64_t, std::int64_t) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ids.push_back(std::this_thread::get_id());
    }
    // Both chunks wait for each other: this only finishes if they run at the same time.
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();
  });
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] != ids[1]);
  CHECK((ids[0] == std::this_thread::get_id() || ids[1] == std::this_thread::get_id()));
}

TEST_CASE("a parallel_for inside a parallel region runs serially on the calling thread") {
  ThreadCountGuard guard;
  set_num_threads(3);
  CHECK_FALSE(in_parallel_region());
  std::atomic<int> inner_calls{0};
  std::atomic<int> bad_inner{0};
  std::atomic<std::int64_t> total{0};
  parallel_for(0, 3, 1, [&](std::int64_t, std::int64_t) {
    CHECK(in_parallel_region());
    const auto outer_thread = std::this_thread::get_id();
    parallel_for(0, 100, 1, [&](std::int64_t lo, std::int64_t hi) {
      inner_calls.fetch_add(1);
      if (lo != 0 || hi != 100 || std::this_thread::get_id() != outer_thread) bad_inner.fetch_add(1);
      total.fetch_add(hi - lo);
    });
  });
  CHECK(inner_calls.load() == 3);
  CHECK(bad_inner.load() == 0);
  CHECK(total.load() == 300);
  CHECK_FALSE(in_parallel_region());
}

TEST_CASE("an exception in a chunk is rethrown in the caller and the pool keeps working") {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 4}) {
    set_num_threads(threads);
    CAPTURE(threads);
    CHECK_THROWS_AS(parallel_for(0, 100, 1,
                                 [](std::int64_t lo, std::int64_t hi) {
                                   if (lo <= 99 && 99 < hi) throw std::out_of_range("chunk with 99");
                                 }),
                    std::out_of_range);
    CHECK_FALSE(in_parallel_region());
    std::atomic<std::int64_t> sum{0};
    parallel_for(0, 100, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) sum.fetch_add(i);
    });
    CHECK(sum.load() == 4950);
  }
  CHECK_THROWS_AS(parallel_run([](int index) {
                    if (index == 0) throw std::runtime_error("caller fails");
                  }),
                  std::runtime_error);
}

TEST_CASE("parallel_run: the caller is index 0, workers that join get distinct indices, nesting runs serially") {
  ThreadCountGuard guard;
  set_num_threads(3);
  std::vector<std::atomic<int>> calls(3);
  std::atomic<int> arrived{0};
  // The caller stays inside until both workers have joined, so they must.
  parallel_run([&](int index) {
    calls[static_cast<std::size_t>(index)].fetch_add(1);
    arrived.fetch_add(1);
    if (index == 0)
      while (arrived.load() < 3) std::this_thread::yield();
  });
  for (auto& c : calls) CHECK(c.load() == 1);
  // Nested calls run every index serially on the thread that makes them.
  std::atomic<int> nested{0}, joined{0};
  parallel_run([&](int index) {
    joined.fetch_add(1);
    if (index == 0)
      while (joined.load() < 3) std::this_thread::yield();
    parallel_run([&](int) { nested.fetch_add(1); });
  });
  CHECK(nested.load() == 9);
}

TEST_CASE("a caller that finishes the work alone does not wait for workers that have not started") {
  // The caller's body returns at once, so the workers may or may not join;
  // either way every call returns, each index is used at most once, and the
  // pool stays usable (a late worker must not touch a finished job).
  ThreadCountGuard guard;
  set_num_threads(4);
  for (int repeat = 0; repeat < 2000; ++repeat) {
    std::vector<std::atomic<int>> calls(4);
    parallel_run([&](int index) { calls[static_cast<std::size_t>(index)].fetch_add(1); });
    CHECK(calls[0].load() == 1);
    int more_than_once = 0;
    for (auto& c : calls) more_than_once += c.load() > 1;
    CHECK(more_than_once == 0);
  }
  std::atomic<std::int64_t> sum{0};
  parallel_for(0, 1000, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) sum.fetch_add(i);
  });
  CHECK(sum.load() == 499500);
}

TEST_CASE("set_num_threads below 1 restores the default, PETAL_NUM_THREADS or the core count") {
  ThreadCountGuard guard;
  const char* saved = std::getenv("PETAL_NUM_THREADS");
  const std::string saved_value = saved ? saved : "";
  set_num_threads(5);
  CHECK(num_threads() == 5);
  setenv("PETAL_NUM_THREADS", "3", 1);
  set_num_threads(0);
  CHECK(num_threads() == 3);
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (const char* ignored : {"0", "-2", "many", ""}) {
    CAPTURE(ignored);
    setenv("PETAL_NUM_THREADS", ignored, 1);
    set_num_threads(-1);
    CHECK(num_threads() == cores);
  }
  unsetenv("PETAL_NUM_THREADS");
  set_num_threads(0);
  CHECK(num_threads() == cores);
  if (saved) setenv("PETAL_NUM_THREADS", saved_value.c_str(), 1);
}

TEST_CASE("many small jobs in a row do not lose wake-ups") {
  ThreadCountGuard guard;
  set_num_threads(2);
  std::atomic<std::int64_t> sum{0};
  for (int job = 0; job < 2000; ++job)
    parallel_for(0, 2, 1, [&](std::int64_t lo, std::int64_t hi) { sum.fetch_add(hi - lo); });
  CHECK(sum.load() == 4000);
}

TEST_CASE("callers on different threads get only their own exceptions") {
  // Several application threads (e.g. an input pipeline and the trainer) may
  // call parallel_run/parallel_for at once; an exception must reach the caller whose body threw.
  ThreadCountGuard guard;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    CAPTURE(threads);
    std::atomic<int> wrong_catches{0};
    std::atomic<int> missed_throws{0};
    auto thrower = [&] {
      for (int i = 0; i < 3000; ++i) {
        try {
          parallel_run([](int) { throw std::logic_error("mine"); });
          missed_throws.fetch_add(1);
        } catch (const std::logic_error&) {
        }
      }
    };
    auto quiet = [&] {
      for (int i = 0; i < 3000; ++i) {
        try {
          parallel_run([](int) {});
        } catch (...) {
          wrong_catches.fetch_add(1);
        }
      }
    };
    std::thread a(thrower), b(quiet);
    a.join();
    b.join();
    CHECK(wrong_catches.load() == 0);
    CHECK(missed_throws.load() == 0);
  }
}
