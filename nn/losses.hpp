// Classification losses with Keras's names. When the model ends in softmax and
// the loss is not from_logits, the Trainer feeds the values before the softmax
// to the fused softmax + cross-entropy (stable for any logit size), which is
// what Keras's "from a softmax output" computation approximates.
#pragma once

#include <string>
#include <string_view>

#include "autograd/variable.hpp"
#include "core/tensor.hpp"

namespace petal::nn {

enum class LossKind { CategoricalCrossentropy, SparseCategoricalCrossentropy };

struct Loss {
  LossKind kind = LossKind::CategoricalCrossentropy;
  bool from_logits = false;

  static Loss categorical_crossentropy(bool from_logits = false) {
    return {LossKind::CategoricalCrossentropy, from_logits};
  }
  static Loss sparse_categorical_crossentropy(bool from_logits = false) {
    return {LossKind::SparseCategoricalCrossentropy, from_logits};
  }
  // "categorical_crossentropy" or "sparse_categorical_crossentropy".
  static Loss parse(std::string_view name);
  std::string name() const;

  // Mean loss over the batch. `output` holds logits when `output_is_logits`,
  // else probabilities. Targets: one-hot/probabilities float [N, C] for the
  // categorical loss, int64 class indices [N] (or [N, 1]) for the sparse one;
  // anything else is a ShapeError/DTypeError naming the loss.
  ag::Variable operator()(const ag::Variable& output, const Tensor& target, bool output_is_logits) const;
};

// int64 labels [N] -> float32 one-hot [N, num_classes]; IndexError on a label
// outside [0, num_classes).
Tensor one_hot(const Tensor& labels, std::int64_t num_classes);

}  // namespace petal::nn
