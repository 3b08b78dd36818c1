// Losses with Keras's names, defaults and formulas. Each is reduced like
// Keras's default "sum_over_batch_size": the per-sample losses [N] (the
// elementwise loss reduced over the last axis, then averaged over any other
// non-batch axes) are averaged over the batch; with per-sample weights w [N]
// the result is sum_n w[n] * l[n] / N.
//
//   Loss::categorical_crossentropy(from_logits=false, label_smoothing=0)
//   Loss::sparse_categorical_crossentropy(from_logits=false)
//   Loss::binary_crossentropy(from_logits=false, label_smoothing=0)
//   Loss::mean_squared_error(), Loss::mean_absolute_error(), Loss::huber(delta=1)
//   Loss::kl_divergence()
//   Loss([](const ag::Variable& output, const Tensor& target) { ... })  // any callable
//
// A Loss is called directly on Variables (loss(output, target) gives a 0-d
// scalar that backpropagates) or given to Trainer::compile. When the model
// ends in softmax and a (sparse) categorical cross-entropy is not from_logits,
// the Trainer feeds the values before the softmax to the fused softmax +
// cross-entropy (stable for any logit size), which is what Keras's "from a
// softmax output" computation approximates; likewise a sigmoid output and a
// binary cross-entropy run as the fused sigmoid + cross-entropy from logits
// (Keras's TensorFlow backend does the same through the output's logits; the
// probability form clips at eps and loses the gradient of saturated outputs).
// Other losses see the model's output as it is.
//
// Formulas (per element, then reduced over the last axis by a mean, or a sum
// for the categorical losses and KL divergence), eps = 1e-7:
//   mean_squared_error   (p - t)^2
//   mean_absolute_error  |p - t|  (gradient sign(p - t), +1 where p == t; TF gives 0)
//   huber                0.5 e^2 for |e| <= delta, delta |e| - 0.5 delta^2 beyond
//   binary_crossentropy  -(t log p + (1 - t) log(1 - p)), p clipped to [eps, 1 - eps];
//                        from logits x: max(x, 0) - x t + log(1 + exp(-|x|))
//   categorical_crossentropy  -sum t log p, p clipped to [eps, 1 - eps] (rows are
//                        not renormalised first, see ag::cross_entropy_from_probs),
//                        or log_softmax of logits
//   kl_divergence        sum t log(t / p), t and p clipped to [eps, 1]
// Clipped elements get no gradient (Keras's clip_by_value).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "autograd/variable.hpp"
#include "core/tensor.hpp"
#include "nn/activation.hpp"

namespace petal::nn {

enum class LossKind {
  CategoricalCrossentropy,
  SparseCategoricalCrossentropy,
  BinaryCrossentropy,
  MeanSquaredError,
  MeanAbsoluteError,
  Huber,
  KLDivergence,
  Custom,
};

// A user loss: the model's output and the batch's targets (on the output's
// device) to either per-sample losses [N] (reduced by Loss like the built-in
// ones, sample weights included) or a 0-d scalar (used as it is; sample
// weights are then refused).
using LossFunction = std::function<ag::Variable(const ag::Variable& output, const Tensor& target)>;

struct Loss {
  LossKind kind = LossKind::CategoricalCrossentropy;
  bool from_logits = false;     // cross-entropies: output holds logits, not probabilities
  double label_smoothing = 0.0;  // categorical: t(1-s) + s/C; binary: t(1-s) + s/2
  double delta = 1.0;            // Huber: quadratic inside |error| <= delta, linear outside
  LossFunction function;         // Custom
  std::string custom_name = "custom";

  Loss() = default;
  Loss(LossKind kind_, bool from_logits_ = false) : kind(kind_), from_logits(from_logits_) {}
  // Any callable taking (const ag::Variable& output, const Tensor& target)
  // and returning an ag::Variable becomes a Custom loss.
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Loss> &&
             std::is_invocable_r_v<ag::Variable, F&, const ag::Variable&, const Tensor&>)
  Loss(F&& f, std::string name = "custom")
      : kind(LossKind::Custom), function(std::forward<F>(f)), custom_name(std::move(name)) {}

  static Loss categorical_crossentropy(bool from_logits = false, double label_smoothing = 0.0);
  static Loss sparse_categorical_crossentropy(bool from_logits = false) {
    return {LossKind::SparseCategoricalCrossentropy, from_logits};
  }
  static Loss binary_crossentropy(bool from_logits = false, double label_smoothing = 0.0);
  static Loss mean_squared_error() { return {LossKind::MeanSquaredError}; }
  static Loss mean_absolute_error() { return {LossKind::MeanAbsoluteError}; }
  static Loss huber(double delta = 1.0);
  static Loss kl_divergence() { return {LossKind::KLDivergence}; }
  static Loss custom(LossFunction f, std::string name = "custom");

  // Keras's names and aliases: categorical_crossentropy, sparse_categorical_crossentropy,
  // binary_crossentropy, mean_squared_error (mse), mean_absolute_error (mae),
  // huber (huber_loss), kl_divergence (kld, kullback_leibler_divergence).
  static Loss parse(std::string_view name);
  // Keras's long name ("mean_squared_error", ...), custom_name for a Custom loss.
  std::string name() const;

  // Whether the Trainer may feed this loss the values before a final
  // `activation` (Module::logits_activation): a (sparse) categorical
  // cross-entropy after a softmax, a binary cross-entropy after a sigmoid,
  // either from probabilities.
  bool fuses_with(ActivationKind activation) const {
    if (from_logits) return false;
    if (activation == ActivationKind::Softmax)
      return kind == LossKind::CategoricalCrossentropy || kind == LossKind::SparseCategoricalCrossentropy;
    return activation == ActivationKind::Sigmoid && kind == LossKind::BinaryCrossentropy;
  }

  // Mean loss over the batch (0-d). For the cross-entropies `output` holds
  // logits when `output_is_logits`, else probabilities; the other losses
  // ignore the flag. Targets: one-hot/probabilities float [N, C] for the
  // categorical loss, int64 class indices [N] (or [N, 1]) for the sparse one,
  // floats with the output's element count (or its shape without a trailing
  // 1) for the others; anything else is a ShapeError/DTypeError naming the loss.
  ag::Variable operator()(const ag::Variable& output, const Tensor& target, bool output_is_logits) const;
  // The same with output_is_logits = from_logits.
  ag::Variable operator()(const ag::Variable& output, const Tensor& target) const {
    return (*this)(output, target, from_logits);
  }
  // Weighted by per-sample weights w [N] (an undefined tensor: unweighted):
  // sum_n w[n] * l[n] / N, Keras's sum_over_batch_size.
  ag::Variable operator()(const ag::Variable& output, const Tensor& target, const Tensor& sample_weight,
                          bool output_is_logits) const;
  ag::Variable operator()(const ag::Variable& output, const Tensor& target, const Tensor& sample_weight) const {
    return (*this)(output, target, sample_weight, from_logits);
  }
  // The unreduced per-sample losses [N] (not for a Custom loss that returns a scalar).
  ag::Variable per_sample(const ag::Variable& output, const Tensor& target, bool output_is_logits) const;
};

// int64 labels [N] -> float32 one-hot [N, num_classes]; IndexError on a label
// outside [0, num_classes).
Tensor one_hot(const Tensor& labels, std::int64_t num_classes);

}  // namespace petal::nn
