#include "core/thread_pool.hpp"

#include <algorithm>
#include <atomic>
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
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

// Workers sleep on a condition variable between jobs; a job is a function of
// the thread index. The caller is thread 0 and waits for the others.
class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return n_; }

  void run(const std::function<void(int)>& job) {
    if (n_ == 1) {
      // No workers and no shared state: several application threads may be
      // here at once, and each must get only its own exception.
      t_in_parallel = true;
      try {
        job(0);
      } catch (...) {
        t_in_parallel = false;
        throw;
      }
      t_in_parallel = false;
      return;
    }
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one job at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      remaining_.store(n_ - 1, std::memory_order_relaxed);
      ++generation_;
    }
    wake_.notify_all();
    run_guarded(job, 0);
    // Short spin first: most jobs finish within microseconds of each other.
    for (int spin = 0; spin < 20000 && remaining_.load(std::memory_order_acquire) != 0; ++spin) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    if (remaining_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
    rethrow();
  }

 private:
  void run_guarded(const std::function<void(int)>& job, int index) {
    t_in_parallel = true;
    try {
      job(index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_parallel = false;
  }

  void rethrow() {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(error_mutex_);
      std::swap(e, error_);
    }
    if (e) std::rethrow_exception(e);
  }

  void worker_loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      run_guarded(*job, index);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  std::uint64_t generation_ = 0;
  std::atomic<int> remaining_{0};
  bool stop_ = false;
  std::mutex error_mutex_;
  std::exception_ptr error_;
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
  p->run([&](int t) {
    if (t >= chunks) return;
    // Balanced split: the first n % chunks chunks get one more item.
    const std::int64_t base = n / chunks, extra = n % chunks;
    const std::int64_t lo = begin + t * base + std::min<std::int64_t>(t, extra);
    const std::int64_t hi = lo + base + (t < extra ? 1 : 0);
    fn(lo, hi);
  });
}

}  // namespace petal
