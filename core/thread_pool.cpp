#include "core/thread_pool.hpp"

#ifdef __linux__
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace petal {
namespace {

thread_local bool t_in_parallel = false;

int default_thread_count() {
  if (const char* env = std::getenv("PETAL_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  // The cores this process may run on: a launcher that binds each process to
  // some cores (mpirun binds each rank to one) gets that many threads, not
  // one per core of the machine fighting over the bound ones.
#ifdef __linux__
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) >= 1) return CPU_COUNT(&allowed);
#endif
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

// How long an idle worker (and a caller waiting for workers) polls before it
// sleeps. A sleeping thread's CPU goes idle, and on a virtual machine waking
// it again goes through the hypervisor: 50 us to milliseconds, longer than
// most of the kernels between two parallel jobs, so a worker that slept
// usually arrived after the caller had done all the work alone (the
// claim-based split below) and a 0.3 ms layer took the one-thread time.
// A short poll keeps a stream of back-to-back jobs on both cores and costs
// an oversubscribed machine at most this much per job. PETAL_SPIN_US
// overrides it (0: sleep at once).
std::chrono::nanoseconds spin_duration() {
  static const std::chrono::nanoseconds d = [] {
    long us = 200;
    if (const char* env = std::getenv("PETAL_SPIN_US")) us = std::max(0L, std::atol(env));
    return std::chrono::nanoseconds(us * 1000);
  }();
  return d;
}

// Polls done() for up to spin_duration(); true when it became true. No
// `pause` in the loop: under KVM a stream of pauses looks like a spinning
// lock and gets the vCPU descheduled (pause-loop exiting), which made the
// poll slower than sleeping. The periodic yield hands the CPU to any other
// runnable thread of this machine, so polling costs a loaded machine little.
template <class Done>
bool spin_until(Done&& done) {
  const auto limit = spin_duration();
  if (limit.count() == 0) return done();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 255) == 255) {
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() - start >= limit) return done();
    }
  }
}

// Workers wait for jobs (polling briefly, then on a condition variable). A
// job is a function of a thread index that claims its own work from shared
// counters; the caller runs it as thread 0. A worker joins a job only while
// the caller is still inside it, and the caller then waits only for the
// workers that joined: on a busy machine a worker can wake milliseconds
// late, and the caller must not sit idle for it when it could have done the
// work itself.
class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      stop_flag_.store(true);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return n_; }

  void run(const std::function<void(int)>& fn) {
    if (n_ == 1) {
      // No workers and no shared state: several application threads may be
      // here at once, and each must get only its own exception.
      t_in_parallel = true;
      try {
        fn(0);
      } catch (...) {
        t_in_parallel = false;
        throw;
      }
      t_in_parallel = false;
      return;
    }
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one job at a time
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    job->run(0);
    // Dekker-style hand-off (sequentially consistent): a worker counts itself
    // in, then checks `closed`; the caller closes, then reads the count.
    job->closed.store(true);
    if (!spin_until([&] { return job->active.load() == 0; })) {
      std::unique_lock<std::mutex> lock(job->mutex);
      job->done.wait(lock, [&] { return job->active.load() == 0; });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  struct Job {
    const std::function<void(int)>* fn = nullptr;
    std::mutex mutex;  // guards error; with `done`, the caller's sleep
    std::condition_variable done;
    std::atomic<int> active{0};        // workers inside fn (or about to check `closed`)
    std::atomic<int> next_index{1};    // thread index of the next worker to join
    std::atomic<bool> closed{false};   // the caller has returned from fn: nobody joins any more
    std::exception_ptr error;

    void run(int index) {
      t_in_parallel = true;
      try {
        (*fn)(index);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
      }
      t_in_parallel = false;
    }
  };

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stop_flag_.load(); });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_) return;
        seen = generation_.load(std::memory_order_relaxed);
        job = job_;
      }
      if (!job) continue;  // woke after the caller had finished
      job->active.fetch_add(1);
      if (job->closed.load()) {
        leave(*job);
        continue;
      }
      job->run(job->next_index.fetch_add(1));
      leave(*job);
    }
  }

  static void leave(Job& job) {
    if (job.active.fetch_sub(1) == 1) {
      // The caller may be asleep on `done` (it checks `active` under the mutex).
      std::lock_guard<std::mutex> lock(job.mutex);
      job.done.notify_one();
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Job> job_;
  std::atomic<std::uint64_t> generation_{0};  // written under mutex_, polled without it
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};  // stop_, for polling workers
};

std::mutex g_pool_mutex;
std::shared_ptr<Pool> g_pool;

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<Pool>(default_thread_count());
  return g_pool;
}

}  // namespace

int num_threads() { return pool()->size(); }

void set_num_threads(int n) {
  if (n < 1) n = default_thread_count();
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_pool && g_pool->size() == n) return;
  g_pool = std::make_shared<Pool>(n);
}

bool in_parallel_region() { return t_in_parallel; }

void parallel_run(const std::function<void(int)>& fn) {
  if (t_in_parallel) {
    // Nested: keep the "once per thread index" contract, serially.
    const int n = pool()->size();
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  pool()->run(fn);
}

void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  auto p = t_in_parallel ? nullptr : pool();
  const std::int64_t max_chunks = p ? p->size() : 1;
  const std::int64_t chunks = std::min<std::int64_t>(max_chunks, (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  // The split is fixed; which thread runs a chunk is not (whoever claims it).
  std::atomic<std::int64_t> next_chunk{0};
  p->run([&](int) {
    for (std::int64_t c; (c = next_chunk.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      // Balanced split: the first n % chunks chunks get one more item.
      const std::int64_t base = n / chunks, extra = n % chunks;
      const std::int64_t lo = begin + c * base + std::min<std::int64_t>(c, extra);
      const std::int64_t hi = lo + base + (c < extra ? 1 : 0);
      fn(lo, hi);
    }
  });
}

std::int64_t TwoEndedRange::take(bool from_back) {
  std::uint64_t ends = ends_.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t front = ends & 0xffffffffu, back = ends >> 32;
    if (front >= back) return -1;
    const std::uint64_t next = from_back ? ((back - 1) << 32 | front) : (back << 32 | (front + 1));
    if (ends_.compare_exchange_weak(ends, next, std::memory_order_relaxed))
      return static_cast<std::int64_t>(from_back ? back - 1 : front);
  }
}

void parallel_for_pieces(std::int64_t begin, std::int64_t end, std::int64_t piece,
                         const std::function<void(std::int64_t, std::int64_t)>& fn) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  if (piece < 1) piece = 1;
  auto p = t_in_parallel ? nullptr : pool();
  if (!p || p->size() == 1 || n <= piece) {
    fn(begin, end);
    return;
  }
  // Pieces no more than TwoEndedRange counts.
  piece = std::max(piece, (n + 0xfffffffe) / 0xffffffff);
  TwoEndedRange pieces((n + piece - 1) / piece);
  p->run([&](int index) {
    for (std::int64_t c; (c = pieces.take(index % 2 == 1)) >= 0;)
      fn(begin + c * piece, std::min(end, begin + (c + 1) * piece));
  });
}

}  // namespace petal
