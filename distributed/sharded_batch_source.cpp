#include "distributed/sharded_batch_source.hpp"

#include "core/error.hpp"

namespace petal::distributed {

namespace {

Tensor rows_of(const Tensor& t, std::int64_t begin, std::int64_t end) {
  return t.defined() ? t.slice(0, begin, end) : t;
}

}  // namespace

nn::Batch batch_rows(const nn::Batch& batch, std::int64_t begin, std::int64_t end) {
  nn::Batch out;
  out.x = rows_of(batch.x, begin, end);
  out.y = rows_of(batch.y, begin, end);
  out.sample_weight = rows_of(batch.sample_weight, begin, end);
  for (const auto& [name, t] : batch.inputs) out.inputs[name] = rows_of(t, begin, end);
  for (const auto& [name, t] : batch.targets) out.targets[name] = rows_of(t, begin, end);
  return out;
}

ShardedBatchSource::ShardedBatchSource(nn::BatchSource& global, int rank, int size)
    : global_(global), rank_(rank), size_(size) {
  PETAL_CHECK(size >= 1 && rank >= 0 && rank < size, ValueError, "ShardedBatchSource: rank ", rank,
              " outside a group of ", size);
}

void ShardedBatchSource::begin_epoch(int epoch) { global_.begin_epoch(epoch); }

std::optional<nn::Batch> ShardedBatchSource::next() {
  std::optional<nn::Batch> batch = global_.next();
  if (!batch) return batch;
  const std::int64_t rows = batch->size();
  PETAL_CHECK(rows >= size_, ValueError, "data-parallel training: a global batch of ", rows, " rows cannot give ",
              size_, " processes a row each (drop the last partial batch, or use a larger batch size)");
  const std::int64_t begin = rows * rank_ / size_, end = rows * (rank_ + 1) / size_;
  return batch_rows(*batch, begin, end);
}

}  // namespace petal::distributed
