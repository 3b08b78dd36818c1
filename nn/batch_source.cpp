#include "nn/batch_source.hpp"

#include <cstring>
#include <numeric>

#include "core/error.hpp"

namespace petal::nn {

std::int64_t Batch::size() const {
  if (x.defined()) return x.dim() >= 1 ? x.size(0) : 1;
  if (!inputs.empty() && inputs.begin()->second.defined() && inputs.begin()->second.dim() >= 1)
    return inputs.begin()->second.size(0);
  return 0;
}

Tensor gather_rows(const Tensor& t, const std::vector<std::int64_t>& indices) {
  Tensor src = t.to(Device::cpu()).contiguous();
  Shape shape = src.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor out = Tensor::empty_pinned(shape, src.dtype());
  const std::size_t row_bytes = src.nbytes() / static_cast<std::size_t>(std::max<std::int64_t>(src.size(0), 1));
  const char* in = static_cast<const char*>(src.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    PETAL_CHECK(indices[i] >= 0 && indices[i] < src.size(0), IndexError, "gather_rows: row ", indices[i],
                " outside [0, ", src.size(0), ")");
    std::memcpy(dst + i * row_bytes, in + static_cast<std::size_t>(indices[i]) * row_bytes, row_bytes);
  }
  return out;
}

TensorBatchSource::TensorBatchSource(Tensor x, Tensor y, std::int64_t batch_size, bool shuffle, std::uint64_t seed,
                                     bool drop_remainder)
    : x_(std::move(x)), y_(std::move(y)), batch_size_(batch_size), shuffle_(shuffle), seed_(seed),
      drop_remainder_(drop_remainder) {
  PETAL_CHECK(x_.defined() && y_.defined() && x_.dim() >= 1 && y_.dim() >= 1 && x_.size(0) == y_.size(0), ShapeError,
              "TensorBatchSource: x and y need the same number of rows, got ", shape_str(x_.shape()), " and ",
              shape_str(y_.shape()));
  PETAL_CHECK(batch_size > 0, ValueError, "TensorBatchSource: batch size must be positive, got ", batch_size);
  begin_epoch(0);
}

void TensorBatchSource::begin_epoch(int epoch) {
  order_.resize(static_cast<std::size_t>(x_.size(0)));
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) {
    Generator gen(seed_ * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch));
    for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[gen.uniform_int(i)]);
  }
  position_ = 0;
}

std::optional<Batch> TensorBatchSource::next() {
  const std::int64_t n = x_.size(0);
  const std::int64_t remaining = n - position_;
  if (remaining <= 0 || (drop_remainder_ && remaining < batch_size_)) return std::nullopt;
  const std::int64_t take = std::min(batch_size_, remaining);
  std::vector<std::int64_t> idx(order_.begin() + position_, order_.begin() + position_ + take);
  position_ += take;
  Batch batch{gather_rows(x_, idx), gather_rows(y_, idx)};
  if (w_.defined()) batch.sample_weight = gather_rows(w_, idx);
  return batch;
}

TensorBatchSource& TensorBatchSource::set_sample_weights(Tensor w) {
  PETAL_CHECK(!w.defined() || (is_floating(w.dtype()) && w.dim() == 1 && w.size(0) == x_.size(0)), ShapeError,
              "TensorBatchSource: sample weights must be floats [", x_.size(0), "], got ",
              w.defined() ? str_cat(dtype_name(w.dtype()), " ", shape_str(w.shape())) : std::string("undefined"));
  w_ = std::move(w);
  return *this;
}

std::int64_t TensorBatchSource::steps_per_epoch() const {
  const std::int64_t n = x_.size(0);
  return drop_remainder_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

}  // namespace petal::nn
