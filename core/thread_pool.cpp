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

// Workers sleep on a condition variable between jobs. A job is a function
// of a thread index that claims its own work from shared counters; the
// caller runs it as thread 0. A worker joins a job only while the caller is
// still inside it, and the caller then waits only for the workers that
// joined: on a busy machine a worker can wake milliseconds late, and the
// caller must not sit idle for it when it could have done the work itself.
class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this] { worker_loop(); });
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
      ++generation_;
    }
    wake_.notify_all();
    job->run(0);
    {
      std::unique_lock<std::mutex> lock(job->mutex);
      job->closed = true;
      job->done.wait(lock, [&] { return job->active == 0; });
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
    std::mutex mutex;
    std::condition_variable done;
    int active = 0;        // workers inside fn
    int next_index = 1;    // thread index of the next worker to join
    bool closed = false;   // the caller has returned from fn: nobody joins any more
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
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      if (!job) continue;  // woke after the caller had finished
      int index = 0;
      {
        std::lock_guard<std::mutex> lock(job->mutex);
        if (job->closed) continue;
        index = job->next_index++;
        ++job->active;
      }
      job->run(index);
      std::lock_guard<std::mutex> lock(job->mutex);
      if (--job->active == 0 && job->closed) job->done.notify_one();
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Job> job_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
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

}  // namespace petal
