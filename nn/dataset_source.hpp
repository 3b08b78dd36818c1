// Adapts a data::Dataset (TFRecords, image folders) to the Trainer's
// BatchSource. begin_epoch(e) starts the dataset's pass e, shuffled and
// augmented as pass e of an uninterrupted run (so a run resumed from a
// checkpoint sees the same batches); a dataset that repeats forever keeps
// streaming instead, and `steps_per_epoch` then says how many batches make an
// epoch (Keras's steps_per_epoch; such a stream does not resume exactly).
#pragma once

#include "data/dataset.hpp"
#include "nn/batch_source.hpp"

namespace petal::nn {

class DatasetSource : public BatchSource {
 public:
  // The dataset must outlive the source. steps_per_epoch -1: one pass.
  explicit DatasetSource(data::Dataset& dataset, std::int64_t steps_per_epoch = -1);
  void begin_epoch(int epoch) override;
  std::optional<Batch> next() override;
  std::int64_t steps_per_epoch() const override { return steps_; }

 private:
  data::Dataset& dataset_;
  std::int64_t steps_;
};

}  // namespace petal::nn
