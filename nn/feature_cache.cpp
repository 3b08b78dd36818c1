#include "nn/feature_cache.hpp"

#include <cstring>
#include <memory>

#include "autograd/variable.hpp"
#include "core/error.hpp"
#include "nn/constant_weights.hpp"
#include "nn/core_layers.hpp"

namespace petal::nn {

namespace {

bool contains_dropout(const Module& m) {
  if (dynamic_cast<const Dropout*>(&m)) return true;
  for (const auto& c : m.children())
    if (contains_dropout(*c)) return true;
  return false;
}

}  // namespace

std::size_t frozen_prefix_length(const Sequential& model) {
  PETAL_CHECK(model.built(), ValueError, "frozen_prefix_length: model \"", model.name(),
              "\" is not built (its layers have no weights yet)");
  std::size_t k = 0;
  for (const auto& layer : model.layers()) {
    if (layer->count_trainable_params() > 0 || contains_dropout(*layer)) break;
    ++k;
  }
  return k;
}

Tensor run_layers(Sequential& model, std::size_t begin, std::size_t end, const Tensor& x) {
  const auto& layers = model.layers();
  PETAL_CHECK(begin <= end && end <= layers.size(), IndexError, "run_layers: range [", begin, ", ", end,
              ") outside the ", layers.size(), " layers of \"", model.name(), "\"");
  ag::NoGradGuard no_grad;
  ag::Variable y(x.to(model.device()), false);
  for (std::size_t i = begin; i < end; ++i) {
    const bool was_training = layers[i]->training();
    layers[i]->set_training(false);
    try {
      y = (*layers[i])(y);
    } catch (...) {
      layers[i]->set_training(was_training);
      throw;
    }
    layers[i]->set_training(was_training);
  }
  return y.data();
}

CachedFeatures cache_features(Sequential& model, std::size_t prefix, BatchSource& source, std::int64_t steps) {
  source.begin_epoch(0);
  std::vector<Tensor> features, targets;
  std::int64_t rows = 0;
  // The prefix's weights declared constant from the second batch on (see
  // Trainer::predict_with_targets).
  std::vector<std::unique_ptr<ConstantWeights>> constant;
  for (std::int64_t step = 0; steps < 0 || step < steps; ++step) {
    std::optional<Batch> batch = source.next();
    if (!batch) break;
    if (step == 1)
      for (std::size_t i = 0; i < prefix; ++i) constant.push_back(std::make_unique<ConstantWeights>(*model.layers()[i]));
    features.push_back(run_layers(model, 0, prefix, batch->x).to(Device::cpu()).contiguous());
    targets.push_back(batch->y.to(Device::cpu()).contiguous());
    rows += batch->x.size(0);
  }
  PETAL_CHECK(!features.empty(), ValueError, "cache_features: the source gave no batch");
  auto concat = [rows](const std::vector<Tensor>& parts) {
    Shape shape = parts.front().shape();
    shape[0] = rows;
    Tensor out = Tensor::empty(shape, parts.front().dtype());
    char* dst = static_cast<char*>(out.raw_data());
    for (const Tensor& p : parts) {
      std::memcpy(dst, p.raw_data(), p.nbytes());
      dst += p.nbytes();
    }
    return out;
  };
  return {concat(features), concat(targets)};
}

std::shared_ptr<Sequential> head_of(const Sequential& model, std::size_t prefix) {
  const auto& layers = model.layers();
  PETAL_CHECK(prefix < layers.size(), IndexError, "head_of: prefix ", prefix, " leaves no layer of the ",
              layers.size(), " in \"", model.name(), "\"");
  std::vector<std::shared_ptr<Module>> rest(layers.begin() + static_cast<std::ptrdiff_t>(prefix), layers.end());
  auto head = std::make_shared<Sequential>(rest, model.name() + "_head");
  if (model.built()) head->build(prefix == 0 ? model.input_shape() : layers[prefix - 1]->output_shape());
  return head;
}

}  // namespace petal::nn
