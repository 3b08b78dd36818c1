#include "nn/feature_cache.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "autograd/variable.hpp"
#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "nn/constant_weights.hpp"
#include "nn/core_layers.hpp"

namespace petal::nn {

namespace {

bool contains_dropout(const Module& m) {
  if (dynamic_cast<const Dropout*>(&m)) return true;
  for (const auto& c : m.children())
    if (contains_dropout(*c)) return true;
  return false;
}

// memcpy on all threads: the rows go to pages touched for the first time,
// and in a virtual machine each page fault costs microseconds (the
// flowers' 676 MB of features: 0.42 s on one thread, 0.24 s on two),
// while the other threads would wait for the next batch anyway.
void parallel_copy(void* dst, const void* src, std::size_t bytes) {
  constexpr std::int64_t kPieceBytes = std::int64_t{1} << 20;
  parallel_for_pieces(0, static_cast<std::int64_t>(bytes), kPieceBytes, [&](std::int64_t b, std::int64_t e) {
    std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b, static_cast<std::size_t>(e - b));
  });
}

// Batches of rows gathered into one tensor. With the number of batches
// known, rows go straight into a tensor sized for that many batches of the
// first one's size (a shorter last batch leaves a prefix of it): the
// features of the flowers (3,670 images of 6 x 6 x 1280 floats, 676 MB)
// were kept batch by batch and then copied into a second 676 MB tensor,
// whose fresh pages the kernel had to clear (500,000 page faults in all).
// Batches that do not fit are kept apart and joined at the end.
class RowCollector {
 public:
  explicit RowCollector(std::int64_t expected_batches) : expected_batches_(expected_batches) {}

  void append(const Tensor& part) {
    if (!buffer_.defined() && parts_.empty() && expected_batches_ > 1) {
      Shape shape = part.shape();
      shape[0] *= expected_batches_;
      buffer_ = Tensor::empty(shape, part.dtype());
    }
    if (buffer_.defined() && fits(part)) {
      parallel_copy(static_cast<char*>(buffer_.raw_data()) + filled_ * row_bytes(buffer_), part.raw_data(), part.nbytes());
      filled_ += part.size(0);
    } else {
      flush_buffer();
      parts_.push_back(part);
    }
    rows_ += part.size(0);
  }

  std::int64_t rows() const { return rows_; }

  // All the rows, in order, as one contiguous tensor.
  Tensor take() {
    flush_buffer();
    if (parts_.size() == 1) return parts_.front();
    Shape shape = parts_.front().shape();
    shape[0] = rows_;
    Tensor out = Tensor::empty(shape, parts_.front().dtype());
    char* dst = static_cast<char*>(out.raw_data());
    for (const Tensor& p : parts_) {
      parallel_copy(dst, p.raw_data(), p.nbytes());
      dst += p.nbytes();
    }
    return out;
  }

 private:
  static std::size_t row_bytes(const Tensor& t) { return t.size(0) == 0 ? 0 : t.nbytes() / static_cast<std::size_t>(t.size(0)); }

  bool fits(const Tensor& part) const {
    if (part.dtype() != buffer_.dtype() || part.dim() != buffer_.dim()) return false;
    for (std::int64_t d = 1; d < part.dim(); ++d)
      if (part.size(d) != buffer_.size(d)) return false;
    return filled_ + part.size(0) <= buffer_.size(0);
  }

  // The buffer's filled rows become the first part (a prefix view, contiguous).
  void flush_buffer() {
    if (!buffer_.defined()) return;
    if (filled_ > 0) parts_.insert(parts_.begin(), filled_ == buffer_.size(0) ? buffer_ : buffer_.slice(0, 0, filled_));
    buffer_ = Tensor();
    filled_ = 0;
  }

  std::int64_t expected_batches_;
  Tensor buffer_;
  std::int64_t filled_ = 0, rows_ = 0;
  std::vector<Tensor> parts_;
};

}  // namespace

std::size_t frozen_prefix_length(const Sequential& model) {
  PETAL_CHECK(model.built(), ValueError, "frozen_prefix_length: model \"", model.name(),
              "\" is not built (its layers have no weights yet)");
  std::size_t k = 0;
  for (const auto& layer : model.layers()) {
    if (layer->count_trainable_params() > 0 || contains_dropout(*layer)) break;
    ++k;
  }
  return k;
}

Tensor run_layers(Sequential& model, std::size_t begin, std::size_t end, const Tensor& x) {
  const auto& layers = model.layers();
  PETAL_CHECK(begin <= end && end <= layers.size(), IndexError, "run_layers: range [", begin, ", ", end,
              ") outside the ", layers.size(), " layers of \"", model.name(), "\"");
  ag::NoGradGuard no_grad;
  ag::Variable y(x.to(model.device()), false);
  for (std::size_t i = begin; i < end; ++i) {
    const bool was_training = layers[i]->training();
    layers[i]->set_training(false);
    try {
      y = (*layers[i])(y);
    } catch (...) {
      layers[i]->set_training(was_training);
      throw;
    }
    layers[i]->set_training(was_training);
  }
  return y.data();
}

CachedFeatures cache_features(Sequential& model, std::size_t prefix, BatchSource& source, std::int64_t steps) {
  source.begin_epoch(0);
  const std::int64_t expected_steps = steps >= 0 ? steps : source.steps_per_epoch();
  RowCollector features(expected_steps), targets(expected_steps);
  // The prefix's weights declared constant from the second batch on (see
  // Trainer::predict_with_targets).
  std::vector<std::unique_ptr<ConstantWeights>> constant;
  std::vector<std::int64_t> batch_rows;
  std::vector<double> batch_seconds;
  for (std::int64_t step = 0; steps < 0 || step < steps; ++step) {
    std::optional<Batch> batch = source.next();
    if (!batch) break;
    if (step == 1)
      for (std::size_t i = 0; i < prefix; ++i) constant.push_back(std::make_unique<ConstantWeights>(*model.layers()[i]));
    const auto start = std::chrono::steady_clock::now();
    const Tensor rows = run_layers(model, 0, prefix, batch->x).to(Device::cpu()).contiguous();
    batch_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    batch_rows.push_back(rows.size(0));
    features.append(rows);
    targets.append(batch->y.to(Device::cpu()).contiguous());
  }
  PETAL_CHECK(features.rows() > 0, ValueError, "cache_features: the source gave no batch");
  return {features.take(), targets.take(), std::move(batch_rows), std::move(batch_seconds)};
}

double median_batch_rate(const CachedFeatures& cached, std::int64_t rows) {
  std::vector<double> rates;
  for (std::size_t i = 0; i < cached.batch_rows.size() && i < cached.batch_seconds.size(); ++i)
    if (cached.batch_rows[i] == rows && cached.batch_seconds[i] > 0)
      rates.push_back(static_cast<double>(rows) / cached.batch_seconds[i]);
  if (rates.empty()) return 0.0;
  std::sort(rates.begin(), rates.end());
  const std::size_t mid = rates.size() / 2;
  return rates.size() % 2 == 1 ? rates[mid] : 0.5 * (rates[mid - 1] + rates[mid]);
}

std::shared_ptr<Sequential> head_of(const Sequential& model, std::size_t prefix) {
  const auto& layers = model.layers();
  PETAL_CHECK(prefix < layers.size(), IndexError, "head_of: prefix ", prefix, " leaves no layer of the ",
              layers.size(), " in \"", model.name(), "\"");
  std::vector<std::shared_ptr<Module>> rest(layers.begin() + static_cast<std::ptrdiff_t>(prefix), layers.end());
  auto head = std::make_shared<Sequential>(rest, model.name() + "_head");
  if (model.built()) head->build(prefix == 0 ? model.input_shape() : layers[prefix - 1]->output_shape());
  return head;
}

}  // namespace petal::nn
