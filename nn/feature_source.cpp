#include "nn/feature_source.hpp"

#include "core/error.hpp"

namespace petal::nn {

namespace {

Tensor pick(const data::Features& batch, const std::string& key, const char* role) {
  auto it = batch.find(key);
  PETAL_CHECK(it != batch.end(), ValueError, "FeatureBatchSource: the batch has no ", role, " key \"", key,
              "\" (it has ", data::describe_features(batch), ")");
  return it->second;
}

}  // namespace

FeatureBatchSource::FeatureBatchSource(data::FeatureDataset dataset, std::string x_key, std::string y_key,
                                       std::string sample_weight_key)
    : dataset_(std::move(dataset)), x_key_(std::move(x_key)), y_key_(std::move(y_key)),
      w_key_(std::move(sample_weight_key)) {
  PETAL_CHECK(!x_key_.empty() && !y_key_.empty(), ValueError, "FeatureBatchSource: empty x or y key");
}

FeatureBatchSource FeatureBatchSource::named(data::FeatureDataset dataset, std::vector<std::string> input_keys,
                                             std::vector<std::string> target_keys, std::string sample_weight_key) {
  PETAL_CHECK(!input_keys.empty(), ValueError, "FeatureBatchSource::named: no input keys");
  FeatureBatchSource s(std::move(dataset), input_keys.front(), input_keys.front(), std::move(sample_weight_key));
  s.x_key_.clear();
  s.y_key_.clear();
  s.input_keys_ = std::move(input_keys);
  s.target_keys_ = std::move(target_keys);
  return s;
}

void FeatureBatchSource::begin_epoch(int epoch) { it_.emplace(dataset_.iterate(epoch)); }

std::optional<Batch> FeatureBatchSource::next() {
  if (!it_) begin_epoch(0);
  std::optional<data::Features> b = it_->next();
  if (!b) return std::nullopt;
  Batch out;
  if (!w_key_.empty()) {
    out.sample_weight = pick(*b, w_key_, "sample_weight");
    if (out.sample_weight.dtype() != DType::Float32) out.sample_weight = out.sample_weight.to(DType::Float32);
  }
  if (!input_keys_.empty()) {
    for (const std::string& k : input_keys_) {
      Tensor t = pick(*b, k, "input");
      out.inputs.emplace(k, t.dtype() == DType::Float32 ? t : t.to(DType::Float32));
    }
    for (const std::string& k : target_keys_) out.targets.emplace(k, pick(*b, k, "target"));
    return out;
  }
  out.x = pick(*b, x_key_, "x");
  if (out.x.dtype() != DType::Float32) out.x = out.x.to(DType::Float32);
  out.y = pick(*b, y_key_, "y");
  PETAL_CHECK(out.x.dim() >= 1 && out.y.dim() >= 1 && out.x.size(0) == out.y.size(0), ShapeError,
              "FeatureBatchSource: x \"", x_key_, "\" ", shape_str(out.x.shape()), " and y \"", y_key_, "\" ",
              shape_str(out.y.shape()), " need the same batch size (is the dataset batched?)");
  return out;
}

std::int64_t FeatureBatchSource::steps_per_epoch() const {
  const std::int64_t c = dataset_.cardinality();
  return c >= 0 ? c : -1;
}

}  // namespace petal::nn
