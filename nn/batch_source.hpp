// Where the Trainer gets its batches from. The interface is small so nn does
// not depend on the data pipeline: data/ Datasets are wrapped by an adapter
// (see examples/flowers_dense.cpp), tests use in-memory tensors.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/random.hpp"
#include "core/tensor.hpp"

namespace petal::nn {

struct Batch {
  Tensor x;  // inputs [N, ...], float
  Tensor y;  // targets: one-hot float [N, C] or int64 class indices [N]
  Tensor sample_weight = {};  // optional per-sample loss weights [N] (undefined: all 1)
  // Named batches for functional Models (Keras's dict inputs): inputs keyed by
  // the names of the Model's Input layers, targets by the names of its output
  // layers. When non-empty they replace x / y (see Trainer).
  std::map<std::string, Tensor> inputs = {};
  std::map<std::string, Tensor> targets = {};
  // Rows: x's, else the first named input's (0 when neither is set).
  std::int64_t size() const;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Starts pass `epoch` (0-based). A shuffling source derives its order from
  // the epoch number, so a resumed run sees the same batches as an
  // uninterrupted one.
  virtual void begin_epoch(int epoch) = 0;
  // The next batch of the pass, nullopt at its end.
  virtual std::optional<Batch> next() = 0;
  // Batches in one pass, -1 when unknown.
  virtual std::int64_t steps_per_epoch() const { return -1; }
};

// Batches of rows of in-memory tensors (x [N, ...], y [N, ...]), optionally
// shuffled per epoch with a seed. Batches are in pinned host memory (see gather_rows).
class TensorBatchSource : public BatchSource {
 public:
  TensorBatchSource(Tensor x, Tensor y, std::int64_t batch_size, bool shuffle = false, std::uint64_t seed = 0,
                    bool drop_remainder = false);
  void begin_epoch(int epoch) override;
  std::optional<Batch> next() override;
  std::int64_t steps_per_epoch() const override;
  std::int64_t size() const { return x_.size(0); }
  // Per-sample loss weights w [N] (float), batched with the rows; undefined
  // tensor: none.
  TensorBatchSource& set_sample_weights(Tensor w);

 private:
  Tensor x_, y_, w_;
  std::int64_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  bool drop_remainder_;
  std::vector<std::int64_t> order_;
  std::int64_t position_ = 0;
};

// Copies rows `indices` of t (any dtype) into pinned host memory, ready for a
// fast copy to a device. A t on a device is first copied to the host whole:
// keep the tensors of a TensorBatchSource in host memory.
Tensor gather_rows(const Tensor& t, const std::vector<std::int64_t>& indices);

}  // namespace petal::nn
