// Frozen-base feature caching (issue 6): when the leading layers of a
// Sequential are frozen and deterministic (no trainable parameters, no
// dropout, BatchNormalization in inference mode because it is frozen), their
// output for an image never changes during training, so it can be computed
// once and the remaining layers trained from the cache.
//
//   const std::size_t k = frozen_prefix_length(model);        // e.g. 1: the frozen base
//   CachedFeatures f = cache_features(model, k, train_source); // one pass, no gradients
//   auto head = head_of(model, k);                              // shares the layers
//   Trainer(head).fit(TensorBatchSource(f.features, f.targets, 64, true, seed), ...);
//
// The caller decides whether caching is valid for its data: a source that
// augments (random flips, crops) gives different inputs every epoch.
//
// Devices: the prefix runs on the model's device, and the cache is kept in
// host memory on purpose (one copy per batch while it is filled): the head's
// Trainer copies each cached batch back to the device, which costs little next
// to the base's forward pass and keeps a large cache (3,670 flowers at 6x6x1280
// are 676 MB) out of device memory, which training needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/batch_source.hpp"
#include "nn/sequential.hpp"

namespace petal::nn {

// Number of leading layers of `model` that are frozen (a layer without
// parameters counts as frozen) and deterministic: the prefix stops at the
// first layer with a trainable parameter or at a Dropout.
std::size_t frozen_prefix_length(const Sequential& model);

// Runs layers [begin, end) of a built Sequential on x in inference mode,
// without recording gradients, on the model's device (x is copied there; the
// result stays there).
Tensor run_layers(Sequential& model, std::size_t begin, std::size_t end, const Tensor& x);

struct CachedFeatures {
  Tensor features;  // [N, ...] output of the prefix, in host memory
  Tensor targets;   // the source's targets, row for row
  // Per batch: its rows and the seconds the prefix took on it (reading the
  // batch and copying its rows into the cache not included).
  std::vector<std::int64_t> batch_rows;
  std::vector<double> batch_seconds;
};

// The median over the batches of `rows` rows of rows per second (0 if none):
// the figure to set beside a benchmark's median call, where the whole pass's
// rate also carries the first call's fresh memory and the machine's slow
// moments.
double median_batch_rate(const CachedFeatures& cached, std::int64_t rows);

// One pass of `source` (or `steps` batches) through the first `prefix` layers.
CachedFeatures cache_features(Sequential& model, std::size_t prefix, BatchSource& source, std::int64_t steps = -1);

// A Sequential of layers [prefix, end) of `model`, sharing them (training the
// head trains the model). Named "<model>_head".
std::shared_ptr<Sequential> head_of(const Sequential& model, std::size_t prefix);

}  // namespace petal::nn
