// Internal to data/: the configuration a Dataset collects and the Pipeline
// that runs one pass of it (reader thread, map workers, queues). Not installed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.hpp"

namespace petal::data::detail {

struct DatasetConfig {
  RecordKind kind = RecordKind::Example;
  std::vector<std::filesystem::path> files;  // TFRecord files, or image files
  std::vector<std::int64_t> file_labels;     // image files: class of each
  std::vector<std::string> class_names;
  MapFn map_fn;
  std::size_t shuffle_buffer = 0;
  bool shuffle_files = false;
  std::uint64_t seed = 0;
  std::int64_t batch_size = 1;
  bool drop_remainder = false;
  std::int64_t repeat = 1;
  int prefetch = 2;
  int workers = 0;
  int parallel_reads = 4;
  bool deterministic = true;
  DType dtype = DType::UInt8;
  PixelScale scale = PixelScale::ZeroOne;
  int one_hot_classes = 0;
};

struct Job {
  std::int64_t index = 0;
  std::uint64_t first_element = 0;  // stream position of records[0] (seeds augmentation)
  std::vector<RawRecord> records;
};

struct Result {
  Batch batch;
  std::exception_ptr error;
};


class Pipeline {
 public:
  Pipeline(const DatasetConfig& config, std::uint64_t pass) : cfg_(config), pass_(pass) {
    const int workers = cfg_.workers > 0 ? cfg_.workers : std::max(1u, std::thread::hardware_concurrency());
    capacity_ = cfg_.prefetch + workers;
    try {
      producer_ = std::thread([this] { produce(); });
      for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
    } catch (...) {
      stop();
      throw;
    }
  }
  ~Pipeline() { stop(); }
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  std::optional<Batch> next();
  bool finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    stop_flag_.store(true);
    jobs_cv_.notify_all();
    space_cv_.notify_all();
    results_cv_.notify_all();
    if (producer_.joinable()) producer_.join();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    workers_.clear();
  }

 private:
  void produce();
  void work();
  bool push_job(Job&& job);  // false when stopping
  void read_tfrecords(const std::vector<std::size_t>& order, const std::function<bool(RawRecord&&)>& accept);
  void read_images(const std::vector<std::size_t>& order, const std::function<bool(RawRecord&&)>& accept);
  Batch build_batch(const Job& job, Sample& sample) const;
  // Payload strings go back from the workers to the reader, so reading a
  // record neither allocates nor zero-fills a fresh buffer.
  std::string take_spare_buffer();
  void give_back_buffers(std::vector<RawRecord>& records);

  const DatasetConfig& cfg_;
  const std::uint64_t pass_;
  std::int64_t capacity_ = 1;  // batches queued, in work or waiting for the consumer

  mutable std::mutex mu_;
  std::condition_variable jobs_cv_, space_cv_, results_cv_;
  std::deque<Job> jobs_;
  std::map<std::int64_t, Result> results_;
  std::int64_t in_flight_ = 0;
  std::int64_t produced_ = 0;
  std::int64_t consumed_ = 0;
  std::int64_t next_index_ = 0;
  bool producer_done_ = false;
  std::exception_ptr producer_error_;
  std::exception_ptr failure_;  // the error next() threw; thrown again until restarted
  bool finished_ = false;       // reached the end or failed
  bool stopping_ = false;
  std::atomic<bool> stop_flag_{false};  // read by the reader between records

  std::thread producer_;
  std::vector<std::thread> workers_;

  std::mutex spare_mu_;
  std::vector<std::string> spare_buffers_;
};

}  // namespace petal::data::detail
