#include "nn/dataset_source.hpp"

namespace petal::nn {

DatasetSource::DatasetSource(data::Dataset& dataset, std::int64_t steps_per_epoch)
    : dataset_(dataset), steps_(steps_per_epoch >= 0 ? steps_per_epoch : dataset.cardinality()) {}

// A finite dataset restarts at the pass of the epoch (exact resume); one that
// repeats forever keeps streaming, so its epochs are just the next steps.
void DatasetSource::begin_epoch(int epoch) {
  if (dataset_.cardinality() < 0) {
    dataset_.begin_epoch();
    return;
  }
  dataset_.begin_pass(epoch);
}

std::optional<Batch> DatasetSource::next() {
  std::optional<data::Batch> b = dataset_.next();
  if (!b) return std::nullopt;
  return Batch{std::move(b->images), std::move(b->labels)};
}

}  // namespace petal::nn
