// Adapts a data::FeatureDataset of batched named tensors to the Trainer's
// BatchSource for models with one input and one output: x, y and (optionally)
// the per-sample weights are picked from each batch by key.
//
//   auto ds = data::FeatureDataset::from_tensors({{"x", x}, {"y", y}}).shuffle(256, 7).batch(32);
//   nn::FeatureBatchSource source(ds, "x", "y");
//   trainer.fit(source, {.epochs = 5});
//
// begin_epoch(e) starts pass e of the dataset (so a shuffle is reshuffled per
// epoch and a resumed run sees the batches of an uninterrupted one). x and the
// sample weights are converted to float32 when they hold another dtype (uint8
// images come through as 0..255 floats); y is passed as it is (float targets
// or int64 class indices). A missing key is a ValueError listing the batch's keys.
#pragma once

#include <string>
#include <vector>

#include "data/feature_dataset.hpp"
#include "nn/batch_source.hpp"

namespace petal::nn {

class FeatureBatchSource : public BatchSource {
 public:
  // The dataset must already be batched (its elements are [N, ...] tensors).
  // sample_weight_key empty: no weights.
  FeatureBatchSource(data::FeatureDataset dataset, std::string x_key, std::string y_key,
                     std::string sample_weight_key = "");
  // Named batches for functional Models (Keras's dict inputs, see trainer.hpp):
  // the keys input_keys go to Batch::inputs (converted to float32) and
  // target_keys to Batch::targets, under the same names, which must be the
  // names of the Model's Input and output layers. target_keys may be empty (predict).
  static FeatureBatchSource named(data::FeatureDataset dataset, std::vector<std::string> input_keys,
                                  std::vector<std::string> target_keys, std::string sample_weight_key = "");
  void begin_epoch(int epoch) override;
  std::optional<Batch> next() override;
  // The dataset's cardinality when known, else -1.
  std::int64_t steps_per_epoch() const override;

 private:
  data::FeatureDataset dataset_;
  std::string x_key_, y_key_, w_key_;
  std::vector<std::string> input_keys_, target_keys_;  // named mode when input_keys_ is non-empty
  std::optional<data::FeatureIterator> it_;
};

}  // namespace petal::nn
