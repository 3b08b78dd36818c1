// One process's share of a data-parallel run's global batches. Every process
// reads the same global batches in the same order (the order one process
// with the same global batch size would see, shuffling included), and process
// r of N keeps rows [r * B / N, (r + 1) * B / N) of each batch of B rows: every
// record is used once per epoch across the processes, and global step s
// covers exactly the records of a one-process run's step s.
//
// Each process reads (decodes) every global batch and keeps its share: simple
// and exact, and the cost is the input pipeline's, not the network's.
// A global batch smaller than N cannot give every process a row: that is a
// ValueError (drop the remainder, or pick a batch size with enough rows).
#pragma once

#include <optional>

#include "nn/batch_source.hpp"

namespace petal::distributed {

class ShardedBatchSource : public nn::BatchSource {
 public:
  // `global` must outlive this source.
  ShardedBatchSource(nn::BatchSource& global, int rank, int size);
  void begin_epoch(int epoch) override;
  std::optional<nn::Batch> next() override;
  std::int64_t steps_per_epoch() const override { return global_.steps_per_epoch(); }

 private:
  nn::BatchSource& global_;
  int rank_, size_;
};

// Rows [begin, end) of every tensor of the batch (x, y, weights, named).
nn::Batch batch_rows(const nn::Batch& batch, std::int64_t begin, std::int64_t end);

}  // namespace petal::distributed
