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
#pragma once

#include <cstddef>
#include <memory>

#include "nn/batch_source.hpp"
#include "nn/sequential.hpp"

namespace petal::nn {

// Number of leading layers of `model` that are frozen (a layer without
// parameters counts as frozen) and deterministic: the prefix stops at the
// first layer with a trainable parameter or at a Dropout.
std::size_t frozen_prefix_length(const Sequential& model);

// Runs layers [begin, end) of a built Sequential on x in inference mode,
// without recording gradients.
Tensor run_layers(Sequential& model, std::size_t begin, std::size_t end, const Tensor& x);

struct CachedFeatures {
  Tensor features;  // [N, ...] output of the prefix
  Tensor targets;   // the source's targets, row for row
};

// One pass of `source` (or `steps` batches) through the first `prefix` layers.
CachedFeatures cache_features(Sequential& model, std::size_t prefix, BatchSource& source, std::int64_t steps = -1);

// A Sequential of layers [prefix, end) of `model`, sharing them (training the
// head trains the model). Named "<model>_head".
std::shared_ptr<Sequential> head_of(const Sequential& model, std::size_t prefix);

}  // namespace petal::nn
