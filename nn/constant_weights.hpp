// A promise that a model's weights do not change for a while, so inference
// can prepare them once: every GEMM that reads a weight as its B operand
// (1x1 convolutions, Dense, the inverted-residual blocks' expansions and
// projections) packs it into the kernel's panel layout the first time and
// reads the packed copy from then on, as ONNX Runtime does when it creates
// a session. Batch 1 gains most: its few-row products otherwise read each
// weight in place, a new row (another page) at every step of K.
//
//   {
//     nn::ConstantWeights constant(*model);   // packs nothing yet
//     for (const auto& image : images) model->predict(image);
//   }                                          // packed copies dropped
//
// While it is alive, petal's own writers of weights (optimizers, weight
// loading, restoring the best weights) throw rather than change a declared
// weight. A write it cannot see (through a pointer into a tensor, or an
// in-place tensor op) breaks the promise: the packed copies would go stale.
// The scope checks its promise when it ends: a weight whose bytes changed
// is named in `changed_weights()` and, from the destructor, on stderr.
// Trainer::predict and Trainer::evaluate open one from their second batch
// on, and the feature cache (nn/feature_cache.hpp) likewise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/ops_constant.hpp"
#include "nn/module.hpp"

namespace petal::nn {

class ConstantWeights {
 public:
  explicit ConstantWeights(const Module& module);
  ~ConstantWeights();
  ConstantWeights(const ConstantWeights&) = delete;
  ConstantWeights& operator=(const ConstantWeights&) = delete;

  // Names of the weights whose bytes differ from when the scope began.
  std::vector<std::string> changed_weights() const;

 private:
  struct Declared {
    std::string name;
    std::unique_ptr<ops::ConstantDeclaration> declaration;
    std::uint64_t checksum;
  };
  std::vector<Declared> declared_;
};

}  // namespace petal::nn
