#include "nn/batch_split.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <typeindex>
#include <typeinfo>
#include <unordered_set>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"

namespace petal::nn {

namespace {

// petal's layer classes whose inference forward is re-entrant and per sample.
bool is_builtin_layer(const Module& m) {
  static const std::unordered_set<std::type_index> classes = {
      typeid(Model), typeid(MobileNetV2), typeid(Sequential), typeid(Residual), typeid(InputLayer),
      typeid(Flatten), typeid(Dense), typeid(Activation), typeid(Dropout), typeid(ReLU), typeid(LeakyReLU),
      typeid(ELU), typeid(Softmax), typeid(Conv2D), typeid(DepthwiseConv2D), typeid(SeparableConv2D),
      typeid(Conv2DTranspose), typeid(BatchNormalization), typeid(LayerNormalization), typeid(ZeroPadding2D),
      typeid(GlobalAveragePooling2D), typeid(GlobalMaxPooling2D), typeid(AveragePooling2D),
      typeid(MaxPooling2D), typeid(Embedding), typeid(Concatenate), typeid(Add), typeid(Subtract),
      typeid(Multiply), typeid(Average), typeid(Maximum), typeid(Minimum), typeid(Resizing), typeid(RandomFlip),
      typeid(RandomContrast), typeid(RandomRotation), typeid(RandomZoom), typeid(Reshape), typeid(Permute),
      typeid(RepeatVector), typeid(Rescaling), typeid(Cropping2D), typeid(UpSampling2D)};
  return classes.count(typeid(m)) != 0;
}

// Whether every module of the tree may run split: in inference mode, and a
// class of petal's own unless user_layers.
bool tree_splits(const Module& m, bool user_layers) {
  if (m.training() || (!user_layers && !is_builtin_layer(m))) return false;
  for (const auto& c : m.children())
    if (!tree_splits(*c, user_layers)) return false;
  return true;
}

}  // namespace

bool batch_split_applies(const Module& model, const std::vector<ag::Variable>& inputs, bool user_layers) {
  if (ag::grad_enabled() || in_parallel_region() || num_threads() < 2 || inputs.empty()) return false;
  std::int64_t batch = -1;
  for (const ag::Variable& x : inputs) {
    if (!x.defined()) return false;
    const Tensor& t = x.data();
    if (!t.device().is_cpu() || t.dtype() != DType::Float32 || t.dim() < 1) return false;
    if (batch >= 0 && t.shape()[0] != batch) return false;
    batch = t.shape()[0];
  }
  return batch >= num_threads() && tree_splits(model, user_layers);
}

std::vector<ag::Variable> run_batch_split(const std::vector<ag::Variable>& inputs, const RunSlices& run) {
  const std::int64_t batch = inputs[0].data().shape()[0];
  // Slices of about 8 samples, at least one per thread, claimed from a
  // counter: a thread that starts late (a busy machine) finds the others have
  // taken its share. On a quiet machine 4, 8, 16 or batch / threads samples
  // per slice run MobileNetV2 at batch 64 equally fast.
  const std::int64_t slices = std::max<std::int64_t>(std::min<std::int64_t>(batch, num_threads()), (batch + 7) / 8);
  std::vector<std::vector<ag::Variable>> results(static_cast<std::size_t>(slices));
  std::atomic<std::int64_t> next{0};
  const std::optional<bool> mode = TrainingScope::current();
  parallel_run([&](int) {
    ag::NoGradGuard no_grad;
    TrainingScope scope(mode);
    for (std::int64_t s; (s = next.fetch_add(1)) < slices;) {
      const std::int64_t begin = batch * s / slices, end = batch * (s + 1) / slices;
      std::vector<ag::Variable> part;
      for (const ag::Variable& x : inputs) part.emplace_back(x.data().slice(0, begin, end), false);
      results[static_cast<std::size_t>(s)] = run(part);
    }
  });
  std::vector<ag::Variable> outputs;
  for (std::size_t o = 0; o < results[0].size(); ++o) {
    std::vector<Tensor> parts;
    for (std::int64_t s = 0; s < slices; ++s) {
      const Tensor& part = results[static_cast<std::size_t>(s)][o].data();
      const std::int64_t rows = batch * (s + 1) / slices - batch * s / slices;
      PETAL_CHECK(part.dim() >= 1 && part.shape()[0] == rows, ShapeError, "batch split: output ", o,
                  " of a slice of ", rows, " samples has shape ", shape_str(part.shape()),
                  "; a model whose outputs are not per sample needs set_batch_split(BatchSplit::Never)");
      parts.push_back(part);
    }
    outputs.emplace_back(slices == 1 ? parts[0] : ops::concat(parts, 0), false);
  }
  return outputs;
}

std::vector<ag::Variable> BatchSplitting::run_maybe_split(const Module& model, const std::vector<ag::Variable>& inputs,
                                                          const RunSlices& run) {
  if (mode_ != BatchSplit::Never && ran_whole_ && batch_split_applies(model, inputs, mode_ == BatchSplit::Always))
    return run_batch_split(inputs, run);
  std::vector<ag::Variable> outputs = run(inputs);
  ran_whole_ = true;
  return outputs;
}

}  // namespace petal::nn
