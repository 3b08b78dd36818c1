// Inference with the batch split between the pool's threads: each thread
// runs the whole model on its own slice of the batch, every kernel inside on
// one core, instead of all threads meeting at a barrier inside each of the
// model's ops. Between two ops nothing waits, a thread's activations stay in
// its own caches, and the many small ops of a deep network (which split
// badly: a 6x6 depthwise layer is microseconds of work) cost no wake-ups.
// MobileNetV2 at batch 64 on 2 cores: see docs/benchmark_log.md.
//
// When: grad mode off (NoGradGuard, as predict and evaluate run), the model
// in inference mode, CPU float inputs whose batch holds at least one sample
// per thread, more than one thread, not already inside a parallel region,
// and the model has run unsplit once (layers that build lazily have built).
// Samples are independent in inference mode for every built-in layer (batch
// normalization uses its moving statistics, dropout and noise do nothing),
// so the outputs equal the unsplit run's up to float rounding of the
// per-slice kernels (the same arithmetic per sample except where a kernel's
// blocking depends on the batch).
//
// Threads run the layers' forward at once, so by default (BatchSplit::Auto)
// only models made entirely of petal's own layer classes split (the exact
// classes, not subclasses: a user's layer may keep state, or mix samples).
// BatchSplit::Always vouches for the user's layers too (re-entrant, and per
// sample in inference); BatchSplit::Never turns it off.
#pragma once

#include <functional>
#include <vector>

#include "autograd/variable.hpp"

namespace petal::nn {

class Module;

enum class BatchSplit { Auto, Always, Never };

using RunSlices = std::function<std::vector<ag::Variable>(const std::vector<ag::Variable>&)>;

// True when a call of `model` on these inputs may run split (see above);
// with user_layers, layers of other classes than petal's own may run split.
bool batch_split_applies(const Module& model, const std::vector<ag::Variable>& inputs, bool user_layers = false);

// Runs `run` on slices of the batch (dim 0 of every input) on the pool's
// threads, under no-grad and the caller's training scope, and concatenates
// each output's slices along dim 0.
std::vector<ag::Variable> run_batch_split(const std::vector<ag::Variable>& inputs, const RunSlices& run);

// The switch and the "ran whole once" state of a model that splits its
// inference batches (Model, Sequential).
class BatchSplitting {
 public:
  void set_batch_split(BatchSplit mode) { mode_ = mode; }
  BatchSplit batch_split() const { return mode_; }

 protected:
  // `run` on the whole batch, or on slices when batch_split_applies.
  std::vector<ag::Variable> run_maybe_split(const Module& model, const std::vector<ag::Variable>& inputs,
                                            const RunSlices& run);
  // The model's plan changed: the next call runs whole again.
  void reset_batch_split() { ran_whole_ = false; }

 private:
  BatchSplit mode_ = BatchSplit::Auto;
  bool ran_whole_ = false;  // layers that build lazily have done so, on one thread
};

}  // namespace petal::nn
