#include "data/dataset.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "data/file_list.hpp"
#include "data/image_io.hpp"
#include "data/tfrecord.hpp"

namespace petal::data {
namespace {

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

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Independent seeds for (dataset seed, pass, stream or element).
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b);
}

constexpr std::uint64_t kFileOrderStream = ~std::uint64_t{0};
constexpr std::uint64_t kShuffleStream = ~std::uint64_t{1};

template <class T>
void fisher_yates(std::vector<T>& items, Generator& rng) {
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.uniform_int(i)]);
}

// One batch's worth of raw records, numbered in stream order.
struct Job {
  std::int64_t index = 0;
  std::uint64_t first_element = 0;  // stream position of records[0] (seeds augmentation)
  std::vector<RawRecord> records;
};

struct Result {
  Batch batch;
  std::exception_ptr error;
};

// One running pass: the reader thread, the workers and the queues between them.
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

std::string Pipeline::take_spare_buffer() {
  std::lock_guard<std::mutex> lock(spare_mu_);
  if (spare_buffers_.empty()) return {};
  std::string buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

void Pipeline::give_back_buffers(std::vector<RawRecord>& records) {
  // Enough for the batches in flight; beyond that, let them go.
  const auto limit = static_cast<std::size_t>((capacity_ + 1) * cfg_.batch_size);
  std::lock_guard<std::mutex> lock(spare_mu_);
  for (auto& record : records)
    if (spare_buffers_.size() < limit) spare_buffers_.push_back(std::move(record.bytes));
  records.clear();
}

bool Pipeline::push_job(Job&& job) {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [&] { return stopping_ || in_flight_ < capacity_; });
  if (stopping_) return false;
  jobs_.push_back(std::move(job));
  ++in_flight_;
  ++produced_;
  lock.unlock();
  jobs_cv_.notify_one();
  return true;
}

void Pipeline::read_tfrecords(const std::vector<std::size_t>& order,
                              const std::function<bool(RawRecord&&)>& accept) {
  // Round-robin over up to parallel_reads open files, one record at a time; a
  // finished file's slot takes the next file (tf.data's interleave with
  // block_length 1).
  const std::size_t cycle = std::max<std::size_t>(1, std::min<std::size_t>(cfg_.parallel_reads, order.size()));
  std::vector<std::optional<TFRecordReader>> slots(cycle);
  std::size_t next_file = 0;
  std::size_t open = 0;
  auto open_next = [&](std::optional<TFRecordReader>& slot) {
    slot.reset();
    if (next_file < order.size()) {
      slot.emplace(cfg_.files[order[next_file++]]);
      ++open;
    }
  };
  for (auto& slot : slots) open_next(slot);
  while (open > 0) {
    for (auto& slot : slots) {
      if (!slot) continue;
      if (stop_flag_.load(std::memory_order_relaxed)) return;
      RawRecord record;
      record.kind = RecordKind::Example;
      record.bytes = take_spare_buffer();
      const std::int64_t index = slot->next_record_index();
      const std::uint64_t offset = slot->next_record_offset();
      if (!slot->read(record.bytes)) {
        --open;
        open_next(slot);
        continue;
      }
      // Plain concatenation: an ostringstream per record shows up in profiles.
      record.origin = slot->path().native() + ": record " + std::to_string(index) + " at byte " + std::to_string(offset);
      if (!accept(std::move(record))) return;
    }
  }
}

void Pipeline::read_images(const std::vector<std::size_t>& order, const std::function<bool(RawRecord&&)>& accept) {
  for (std::size_t i : order) {
    if (stop_flag_.load(std::memory_order_relaxed)) return;
    RawRecord record;
    record.kind = RecordKind::EncodedImage;
    record.bytes = read_file(cfg_.files[i], std::uint64_t{256} << 20);
    record.label = cfg_.file_labels[i];
    record.origin = cfg_.files[i].string();
    if (!accept(std::move(record))) return;
  }
}

void Pipeline::produce() {
  try {
    Generator order_rng(mix_seed(cfg_.seed, pass_, kFileOrderStream));
    Generator shuffle_rng(mix_seed(cfg_.seed, pass_, kShuffleStream));
    std::vector<RawRecord> buffer;
    const bool shuffling = cfg_.shuffle_buffer > 1;
    if (shuffling) buffer.reserve(cfg_.shuffle_buffer);
    Job job;
    std::uint64_t elements = 0;
    std::uint64_t records_read = 0;

    auto emit = [&](RawRecord&& record) {
      if (job.records.empty()) job.first_element = elements;
      ++elements;
      job.records.push_back(std::move(record));
      if (static_cast<std::int64_t>(job.records.size()) < cfg_.batch_size) return true;
      const std::int64_t index = job.index;
      if (!push_job(std::move(job))) return false;
      job = Job{};
      job.index = index + 1;
      return true;
    };
    auto take_random = [&] {
      std::swap(buffer[shuffle_rng.uniform_int(buffer.size())], buffer.back());
      RawRecord out = std::move(buffer.back());
      buffer.pop_back();
      return out;
    };
    const std::function<bool(RawRecord&&)> accept = [&](RawRecord&& record) {
      ++records_read;
      if (!shuffling) return emit(std::move(record));
      buffer.push_back(std::move(record));
      if (buffer.size() < cfg_.shuffle_buffer) return true;
      return emit(take_random());
    };

    for (std::int64_t rep = 0; cfg_.repeat < 0 || rep < cfg_.repeat; ++rep) {
      std::vector<std::size_t> order(cfg_.files.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      if (cfg_.shuffle_files) fisher_yates(order, order_rng);
      const std::uint64_t before = records_read;
      if (cfg_.kind == RecordKind::Example) read_tfrecords(order, accept);
      else read_images(order, accept);
      if (stop_flag_.load()) return;
      if (records_read == before) break;  // no data at all: repeating would spin forever
    }
    while (!buffer.empty())
      if (!emit(take_random())) return;
    if (!job.records.empty() && !cfg_.drop_remainder) push_job(std::move(job));
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    producer_error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    producer_done_ = true;
  }
  jobs_cv_.notify_all();
  results_cv_.notify_all();
}

Batch Pipeline::build_batch(const Job& job, Sample& sample) const {
  const auto n = static_cast<std::int64_t>(job.records.size());
  Batch batch;
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  std::size_t image_elements = 0;
  Image first_shape;
  for (std::int64_t i = 0; i < n; ++i) {
    const RawRecord& record = job.records[static_cast<std::size_t>(i)];
    Generator rng(mix_seed(cfg_.seed, pass_, job.first_element + static_cast<std::uint64_t>(i)));
    cfg_.map_fn(record, rng, sample);
    const Image& image = sample.image;
    PETAL_CHECK(image.height > 0 && image.width > 0 && image.channels > 0 &&
                    image.size() == static_cast<std::size_t>(image.height) * image.width * image.channels,
                ValueError, record.origin, ": the map function produced an invalid ", image.shape_str(), " image");
    if (i == 0) {
      first_shape.reset(0, 0, 0);
      first_shape.height = image.height;
      first_shape.width = image.width;
      first_shape.channels = image.channels;
      image_elements = image.size();
      batch.images = Tensor::empty_pinned({n, image.height, image.width, image.channels}, cfg_.dtype);
    } else if (image.height != first_shape.height || image.width != first_shape.width ||
               image.channels != first_shape.channels) {
      throw ShapeError(str_cat("Dataset batch: ", record.origin, " gives a ", image.shape_str(),
                               " image but the batch started with ", first_shape.shape_str(),
                               "; set Preprocess height/width to resize every image"));
    }
    if (cfg_.dtype == DType::UInt8)
      std::memcpy(batch.images.data<std::uint8_t>() + i * image_elements, image.data(), image_elements);
    else
      pixels_to_float(image.data(), batch.images.data<float>() + i * image_elements, image_elements, cfg_.scale);
    if (cfg_.one_hot_classes > 0)
      PETAL_CHECK(sample.label >= 0 && sample.label < cfg_.one_hot_classes, ValueError, record.origin, ": label ",
                  sample.label, " outside [0, ", cfg_.one_hot_classes, ") for one-hot labels");
    labels[static_cast<std::size_t>(i)] = sample.label;
  }
  if (cfg_.one_hot_classes > 0) {
    batch.labels = Tensor::empty_pinned({n, cfg_.one_hot_classes}, DType::Float32);
    float* out = batch.labels.data<float>();
    std::fill(out, out + n * cfg_.one_hot_classes, 0.0f);
    for (std::int64_t i = 0; i < n; ++i) out[i * cfg_.one_hot_classes + labels[static_cast<std::size_t>(i)]] = 1.0f;
  } else {
    batch.labels = Tensor::empty_pinned({n}, DType::Int64);
    std::copy(labels.begin(), labels.end(), batch.labels.data<std::int64_t>());
  }
  return batch;
}

void Pipeline::work() {
  Sample sample;  // reused so its pixel buffer is allocated once per thread
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      jobs_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty() || producer_done_; });
      if (stopping_ || jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Result result;
    try {
      result.batch = build_batch(job, sample);
    } catch (...) {
      result.error = std::current_exception();
    }
    give_back_buffers(job.records);
    {
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace(job.index, std::move(result));
    }
    results_cv_.notify_all();
  }
}

std::optional<Batch> Pipeline::next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (failure_) std::rethrow_exception(failure_);
  if (finished_) return std::nullopt;
  for (;;) {
    auto it = results_.end();
    if (cfg_.deterministic) it = results_.find(next_index_);
    else if (!results_.empty()) it = results_.begin();  // the earliest batch that is ready
    if (it != results_.end()) {
      Result result = std::move(it->second);
      results_.erase(it);
      ++next_index_;
      ++consumed_;
      --in_flight_;
      lock.unlock();
      space_cv_.notify_one();
      if (result.error) {
        std::lock_guard<std::mutex> relock(mu_);
        failure_ = result.error;
        finished_ = true;  // begin_epoch() restarts even a repeat-forever stream
        std::rethrow_exception(result.error);
      }
      return std::move(result.batch);
    }
    if (producer_done_ && consumed_ == produced_) {
      finished_ = true;
      if (producer_error_) {
        failure_ = producer_error_;
        std::rethrow_exception(producer_error_);
      }
      return std::nullopt;
    }
    if (stopping_) return std::nullopt;
    results_cv_.wait(lock);
  }
}

std::vector<std::filesystem::path> sorted_entries(const std::filesystem::path& dir, bool directories) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (directories ? it->is_directory(ec) : it->is_regular_file(ec)) out.push_back(it->path());
  }
  if (ec) throw IOError(str_cat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace

struct Dataset::Impl {
  DatasetConfig config;
  std::unique_ptr<Pipeline> run;
  std::int64_t passes = 0;
  std::optional<std::int64_t> record_count;

  DatasetConfig& edit() {
    run.reset();
    return config;
  }
};

Dataset::Dataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataset::Dataset(Dataset&&) noexcept = default;
Dataset& Dataset::operator=(Dataset&&) noexcept = default;
Dataset::~Dataset() = default;

Dataset Dataset::from_tfrecords(std::vector<std::filesystem::path> files) {
  PETAL_CHECK(!files.empty(), ValueError, "Dataset::from_tfrecords: no files given");
  for (const auto& f : files) {
    std::error_code ec;
    PETAL_CHECK(std::filesystem::is_regular_file(f, ec), IOError, "Dataset::from_tfrecords: '", f.string(),
                "' is not a readable file");
  }
  auto impl = std::make_unique<Impl>();
  impl->config.kind = RecordKind::Example;
  impl->config.files = std::move(files);
  return Dataset(std::move(impl));
}

Dataset Dataset::from_tfrecord_glob(const std::string& pattern) { return from_tfrecords(glob_files(pattern)); }

Dataset Dataset::from_image_folder(const std::filesystem::path& root) {
  std::error_code ec;
  PETAL_CHECK(std::filesystem::is_directory(root, ec), IOError, "Dataset::from_image_folder: '", root.string(),
              "' is not a folder");
  auto impl = std::make_unique<Impl>();
  DatasetConfig& cfg = impl->config;
  cfg.kind = RecordKind::EncodedImage;
  for (const auto& class_dir : sorted_entries(root, true)) {
    const auto label = static_cast<std::int64_t>(cfg.class_names.size());
    cfg.class_names.push_back(class_dir.filename().string());
    for (const auto& file : sorted_entries(class_dir, false)) {
      if (!has_image_extension(file)) continue;
      cfg.files.push_back(file);
      cfg.file_labels.push_back(label);
    }
  }
  PETAL_CHECK(!cfg.class_names.empty(), ValueError, "Dataset::from_image_folder: '", root.string(),
              "' has no class subfolders");
  PETAL_CHECK(!cfg.files.empty(), ValueError, "Dataset::from_image_folder: no .jpg/.jpeg/.png files in the ",
              cfg.class_names.size(), " subfolders of '", root.string(), "'");
  return Dataset(std::move(impl));
}

Dataset& Dataset::map(const Preprocess& preprocess) {
  impl_->edit().map_fn = make_map(preprocess);
  return *this;
}

Dataset& Dataset::map(MapFn fn) {
  PETAL_CHECK(static_cast<bool>(fn), ValueError, "Dataset::map: empty function");
  impl_->edit().map_fn = std::move(fn);
  return *this;
}

Dataset& Dataset::shuffle(std::size_t buffer_size, std::uint64_t seed, bool shuffle_files) {
  DatasetConfig& cfg = impl_->edit();
  cfg.shuffle_buffer = buffer_size;
  cfg.seed = seed;
  cfg.shuffle_files = shuffle_files;
  return *this;
}

Dataset& Dataset::seed(std::uint64_t seed) {
  impl_->edit().seed = seed;
  return *this;
}

Dataset& Dataset::batch(std::int64_t batch_size, bool drop_remainder) {
  PETAL_CHECK(batch_size >= 1, ValueError, "Dataset::batch: batch size ", batch_size, " must be >= 1");
  DatasetConfig& cfg = impl_->edit();
  cfg.batch_size = batch_size;
  cfg.drop_remainder = drop_remainder;
  return *this;
}

Dataset& Dataset::repeat(std::int64_t count) {
  PETAL_CHECK(count == -1 || count >= 1, ValueError, "Dataset::repeat: count ", count, " must be >= 1 or -1");
  impl_->edit().repeat = count;
  return *this;
}

Dataset& Dataset::prefetch(int batches) {
  PETAL_CHECK(batches >= 0, ValueError, "Dataset::prefetch: ", batches, " batches must be >= 0");
  impl_->edit().prefetch = batches;
  return *this;
}

Dataset& Dataset::num_parallel_calls(int threads) {
  impl_->edit().workers = threads;
  return *this;
}

Dataset& Dataset::num_parallel_reads(int files) {
  PETAL_CHECK(files >= 1, ValueError, "Dataset::num_parallel_reads: ", files, " must be >= 1");
  impl_->edit().parallel_reads = files;
  return *this;
}

Dataset& Dataset::deterministic(bool keep_order) {
  impl_->edit().deterministic = keep_order;
  return *this;
}

Dataset& Dataset::output_uint8() {
  impl_->edit().dtype = DType::UInt8;
  return *this;
}

Dataset& Dataset::output_float(PixelScale scale) {
  DatasetConfig& cfg = impl_->edit();
  cfg.dtype = DType::Float32;
  cfg.scale = scale;
  return *this;
}

Dataset& Dataset::one_hot(int num_classes) {
  PETAL_CHECK(num_classes >= 0, ValueError, "Dataset::one_hot: ", num_classes, " classes");
  impl_->edit().one_hot_classes = num_classes;
  return *this;
}

void Dataset::begin_epoch() {
  if (impl_->config.repeat < 0 && impl_->run && !impl_->run->finished()) return;
  impl_->run.reset();
  if (!impl_->config.map_fn) impl_->config.map_fn = make_map(Preprocess{});
  impl_->run = std::make_unique<Pipeline>(impl_->config, static_cast<std::uint64_t>(impl_->passes));
  ++impl_->passes;
}

std::optional<Batch> Dataset::next() {
  if (!impl_->run) begin_epoch();
  return impl_->run->next();
}

void Dataset::stop() { impl_->run.reset(); }

std::int64_t Dataset::num_records() {
  if (!impl_->record_count) {
    std::int64_t total = 0;
    if (impl_->config.kind == RecordKind::Example) {
      for (const auto& f : impl_->config.files) total += count_tfrecords(f);
    } else {
      total = static_cast<std::int64_t>(impl_->config.files.size());
    }
    impl_->record_count = total;
  }
  return *impl_->record_count;
}

std::int64_t Dataset::steps_per_epoch() {
  const std::int64_t n = num_records();
  const std::int64_t b = impl_->config.batch_size;
  return impl_->config.drop_remainder ? n / b : (n + b - 1) / b;
}

std::int64_t Dataset::cardinality() {
  const DatasetConfig& cfg = impl_->config;
  if (cfg.repeat < 0) return num_records() == 0 ? 0 : -1;
  const std::int64_t n = num_records() * cfg.repeat;
  return cfg.drop_remainder ? n / cfg.batch_size : (n + cfg.batch_size - 1) / cfg.batch_size;
}

std::int64_t Dataset::epochs_started() const { return impl_->passes; }

const std::vector<std::filesystem::path>& Dataset::files() const { return impl_->config.files; }

const std::vector<std::string>& Dataset::class_names() const { return impl_->config.class_names; }

}  // namespace petal::data
