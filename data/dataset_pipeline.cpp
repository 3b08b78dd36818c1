#include "data/dataset_pipeline.hpp"

#include <algorithm>
#include <cstring>

#include "data/image_io.hpp"
#include "data/tfrecord.hpp"

namespace petal::data::detail {
namespace {

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

}  // namespace

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

}  // namespace petal::data::detail
