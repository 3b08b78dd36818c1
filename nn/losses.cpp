#include "nn/losses.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace petal::nn {

namespace {

// Keras's backend epsilon: the clip bound of probabilities.
constexpr double kEpsilon = 1e-7;

// A 0-d constant on `like`'s device and dtype (broadcasts against anything).
ag::Variable constant(double value, const ag::Variable& like) {
  return ag::Variable(full({}, value, like.dtype(), like.device()), false);
}

// Elementwise |x| from maximum(x, -x): the gradient is sign(x) (+1 at 0).
// (Not ag::abs, whose gradient is 0 at 0.)
ag::Variable magnitude(const ag::Variable& x) { return ag::maximum(x, ag::neg(x)); }

// Keras's clip_by_value: elements outside [low, high] get no gradient; those on
// a bound keep theirs (ties in maximum/minimum go to the first argument).
ag::Variable clip(const ag::Variable& x, double low, double high) {
  return ag::minimum(ag::maximum(x, constant(low, x)), constant(high, x));
}

// Per-sample values [N] from elementwise losses [N, ..., D]: reduced over the
// last axis (sum or mean, as Keras's loss function does), then averaged over
// any axes between the batch and the last.
ag::Variable per_sample_from_elements(const ag::Variable& e, bool sum_last) {
  ag::Variable r = sum_last ? ag::sum(e, {-1}) : ag::mean(e, {-1});
  if (r.dim() > 1) {
    ag::Axes axes;
    for (std::int64_t a = 1; a < r.dim(); ++a) axes.push_back(a);
    r = ag::mean(r, axes);
  }
  return r;
}

// The model output as [N, D...]: a 1-D output [N] is one value per sample.
ag::Variable as_batched(const ag::Variable& output, const std::string& name) {
  PETAL_CHECK(output.dim() >= 1, ShapeError, name, ": model output must be [batch, ...], got a 0-d tensor");
  return output.dim() == 1 ? ag::reshape(output, {output.size(0), 1}) : output;
}

// Float targets with the output's shape: the same shape, or the same element
// count and batch size ([N] against [N, 1] and the like), in the output's dtype.
Tensor float_target(const std::string& name, const ag::Variable& output, const Tensor& target) {
  PETAL_CHECK(target.defined(), ValueError, name, ": undefined targets");
  PETAL_CHECK(is_floating(target.dtype()), DTypeError, name, ": targets must be floats shaped like the output ",
              shape_str(output.shape()), ", got ", dtype_name(target.dtype()));
  PETAL_CHECK(target.shape() == output.shape() ||
                  (target.dim() >= 1 && target.numel() == output.numel() && target.size(0) == output.size(0)),
              ShapeError, name, ": targets ", shape_str(target.shape()), " do not match the output ",
              shape_str(output.shape()));
  Tensor t = target.shape() == output.shape() ? target : target.contiguous().reshape(output.shape());
  return t.dtype() == output.dtype() ? t : t.to(output.dtype());
}

// Categorical targets: float [N, C] (checked), or int64 [N] (or [N, 1]) for the sparse loss.
Tensor categorical_target(const Loss& loss, const ag::Variable& output, const Tensor& target) {
  const std::string name = loss.name();
  PETAL_CHECK(output.dim() == 2, ShapeError, name, ": model output must be [batch, classes], got ",
              shape_str(output.shape()));
  const std::int64_t n = output.size(0), c = output.size(1);
  Tensor t = target;
  if (loss.kind == LossKind::CategoricalCrossentropy) {
    PETAL_CHECK(is_floating(t.dtype()), DTypeError, name, ": targets must be one-hot floats [", n, ", ", c,
                "], got ", dtype_name(t.dtype()), " (use sparse_categorical_crossentropy for class indices)");
    PETAL_CHECK(t.shape() == Shape({n, c}), ShapeError, name, ": targets ", shape_str(t.shape()),
                " do not match the output ", shape_str(output.shape()));
    if (t.dtype() != output.dtype()) t = t.to(output.dtype());
    if (loss.label_smoothing > 0) {
      // Keras: t * (1 - s) + s / C.
      ag::Variable tv(t, false);
      t = ag::add_scalar(ag::mul_scalar(tv, 1.0 - loss.label_smoothing), loss.label_smoothing / static_cast<double>(c))
              .data();
    }
  } else {
    PETAL_CHECK(t.dtype() == DType::Int64, DTypeError, name, ": targets must be int64 class indices [", n,
                "], got ", dtype_name(t.dtype()));
    if (t.dim() == 2 && t.size(1) == 1) t = t.reshape({n});
    PETAL_CHECK(t.shape() == Shape({n}), ShapeError, name, ": targets ", shape_str(t.shape()),
                " do not match the batch of ", n);
  }
  return t;
}

// sum(w * l) / N for per-sample losses l [N] and weights w [N].
ag::Variable weighted_mean(const std::string& name, const ag::Variable& per_sample, const Tensor& weight) {
  const std::int64_t n = per_sample.size(0);
  PETAL_CHECK(is_floating(weight.dtype()), DTypeError, name, ": sample weights must be floats [", n, "], got ",
              dtype_name(weight.dtype()));
  PETAL_CHECK(weight.numel() == n && (weight.dim() == 1 || (weight.dim() == 2 && weight.size(1) == 1)), ShapeError,
              name, ": sample weights ", shape_str(weight.shape()), " do not match the batch of ", n);
  Tensor w = weight.contiguous().reshape({n}).to(per_sample.device());
  if (w.dtype() != per_sample.dtype()) w = w.to(per_sample.dtype());
  return ag::mul_scalar(ag::sum(ag::mul(per_sample, ag::Variable(w, false))), 1.0 / static_cast<double>(n));
}

ag::Variable call_custom(const Loss& loss, const ag::Variable& output, const Tensor& target) {
  PETAL_CHECK(loss.function != nullptr, ValueError, "custom loss \"", loss.custom_name, "\": empty function");
  ag::Variable r = loss.function(output, target);
  PETAL_CHECK(r.defined(), ValueError, "custom loss \"", loss.custom_name, "\" returned an undefined Variable");
  return r;
}

// A custom loss's result [N, ...] as per-sample values [N].
ag::Variable custom_per_sample(const Loss& loss, const ag::Variable& output, const ag::Variable& r) {
  const std::int64_t n = output.dim() >= 1 ? output.size(0) : 1;
  PETAL_CHECK(r.dim() >= 1 && r.size(0) == n, ShapeError, "custom loss \"", loss.custom_name, "\" returned ",
              shape_str(r.shape()), "; per-sample losses must be [", n, ", ...]");
  if (r.dim() == 1) return r;
  ag::Axes axes;
  for (std::int64_t a = 1; a < r.dim(); ++a) axes.push_back(a);
  return ag::mean(r, axes);
}

}  // namespace

Loss Loss::categorical_crossentropy(bool from_logits, double label_smoothing) {
  PETAL_CHECK(label_smoothing >= 0 && label_smoothing <= 1, ValueError,
              "categorical_crossentropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  Loss l(LossKind::CategoricalCrossentropy, from_logits);
  l.label_smoothing = label_smoothing;
  return l;
}

Loss Loss::binary_crossentropy(bool from_logits, double label_smoothing) {
  PETAL_CHECK(label_smoothing >= 0 && label_smoothing <= 1, ValueError,
              "binary_crossentropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  Loss l(LossKind::BinaryCrossentropy, from_logits);
  l.label_smoothing = label_smoothing;
  return l;
}

Loss Loss::huber(double delta) {
  PETAL_CHECK(delta > 0, ValueError, "huber: delta must be positive, got ", delta);
  Loss l(LossKind::Huber);
  l.delta = delta;
  return l;
}

Loss Loss::custom(LossFunction f, std::string name) {
  PETAL_CHECK(f != nullptr, ValueError, "custom loss \"", name, "\": empty function");
  Loss l;
  l.kind = LossKind::Custom;
  l.function = std::move(f);
  l.custom_name = std::move(name);
  return l;
}

Loss Loss::parse(std::string_view name) {
  if (name == "categorical_crossentropy") return categorical_crossentropy();
  if (name == "sparse_categorical_crossentropy") return sparse_categorical_crossentropy();
  if (name == "binary_crossentropy") return binary_crossentropy();
  if (name == "mean_squared_error" || name == "mse") return mean_squared_error();
  if (name == "mean_absolute_error" || name == "mae") return mean_absolute_error();
  if (name == "huber" || name == "huber_loss") return huber();
  if (name == "kl_divergence" || name == "kld" || name == "kullback_leibler_divergence") return kl_divergence();
  throw ValueError(str_cat("unknown loss \"", name,
                           "\" (expected categorical_crossentropy, sparse_categorical_crossentropy, "
                           "binary_crossentropy, mean_squared_error/mse, mean_absolute_error/mae, huber or "
                           "kl_divergence/kld)"));
}

std::string Loss::name() const {
  switch (kind) {
    case LossKind::CategoricalCrossentropy: return "categorical_crossentropy";
    case LossKind::SparseCategoricalCrossentropy: return "sparse_categorical_crossentropy";
    case LossKind::BinaryCrossentropy: return "binary_crossentropy";
    case LossKind::MeanSquaredError: return "mean_squared_error";
    case LossKind::MeanAbsoluteError: return "mean_absolute_error";
    case LossKind::Huber: return "huber";
    case LossKind::KLDivergence: return "kl_divergence";
    case LossKind::Custom: return custom_name;
  }
  return "loss";
}

ag::Variable Loss::per_sample(const ag::Variable& output, const Tensor& target, bool output_is_logits) const {
  PETAL_CHECK(output.defined(), ValueError, name(), ": undefined model output");
  switch (kind) {
    case LossKind::CategoricalCrossentropy:
    case LossKind::SparseCategoricalCrossentropy: {
      Tensor t = categorical_target(*this, output, target);
      if (kind == LossKind::SparseCategoricalCrossentropy) {
        t = one_hot(t.to(Device::cpu()), output.size(1)).to(output.device());
        if (t.dtype() != output.dtype()) t = t.to(output.dtype());
      }
      ag::Variable tv(t, false);
      // -sum_c t log p, p = softmax(logits) or the clipped probabilities.
      ag::Variable log_p = output_is_logits ? ag::log_softmax(output) : ag::log(clip(output, kEpsilon, 1.0 - kEpsilon));
      return ag::neg(ag::sum(ag::mul(tv, log_p), {-1}));
    }
    case LossKind::BinaryCrossentropy: {
      ag::Variable x = as_batched(output, name());
      ag::Variable t(float_target(name(), x, target), false);
      if (label_smoothing > 0) t = ag::add_scalar(ag::mul_scalar(t, 1.0 - label_smoothing), 0.5 * label_smoothing);
      ag::Variable e;
      if (output_is_logits) {
        // max(x, 0) - x t + log(1 + exp(-|x|)): no overflow for any x.
        e = ag::add(ag::sub(ag::relu(x), ag::mul(x, t)), ag::log(ag::add_scalar(ag::exp(ag::neg(magnitude(x))), 1.0)));
      } else {
        ag::Variable p = clip(x, kEpsilon, 1.0 - kEpsilon);
        e = ag::neg(ag::add(ag::mul(t, ag::log(p)), ag::mul(ag::add_scalar(ag::neg(t), 1.0), ag::log(ag::add_scalar(ag::neg(p), 1.0)))));
      }
      return per_sample_from_elements(e, false);
    }
    case LossKind::MeanSquaredError:
    case LossKind::MeanAbsoluteError:
    case LossKind::Huber: {
      ag::Variable x = as_batched(output, name());
      ag::Variable error = ag::sub(x, ag::Variable(float_target(name(), x, target), false));
      ag::Variable e;
      if (kind == LossKind::MeanSquaredError) {
        e = ag::mul(error, error);
      } else if (kind == LossKind::MeanAbsoluteError) {
        e = magnitude(error);
      } else {
        // 0.5 q^2 + delta (|e| - q) with q = min(|e|, delta): 0.5 e^2 inside
        // |e| <= delta, delta |e| - 0.5 delta^2 outside.
        ag::Variable a = magnitude(error);
        ag::Variable q = ag::minimum(a, constant(delta, a));
        e = ag::add(ag::mul_scalar(ag::mul(q, q), 0.5), ag::mul_scalar(ag::sub(a, q), delta));
      }
      return per_sample_from_elements(e, false);
    }
    case LossKind::KLDivergence: {
      // Keras: t, p clipped to [eps, 1]; sum over the last axis of t log(t / p).
      ag::Variable x = as_batched(output, name());
      ag::Variable t = clip(ag::Variable(float_target(name(), x, target), false), kEpsilon, 1.0);
      ag::Variable p = clip(x, kEpsilon, 1.0);
      ag::Variable e = ag::mul(t, ag::sub(ag::log(t), ag::log(p)));
      return per_sample_from_elements(e, true);
    }
    case LossKind::Custom: {
      ag::Variable r = call_custom(*this, output, target);
      PETAL_CHECK(r.dim() != 0, ValueError, "custom loss \"", custom_name,
                  "\" returned a scalar; per-sample losses [N] are needed here");
      return custom_per_sample(*this, output, r);
    }
  }
  throw ValueError("unknown loss kind");
}

ag::Variable Loss::operator()(const ag::Variable& output, const Tensor& target, bool output_is_logits) const {
  return (*this)(output, target, Tensor(), output_is_logits);
}

ag::Variable Loss::operator()(const ag::Variable& output, const Tensor& target, const Tensor& sample_weight,
                              bool output_is_logits) const {
  PETAL_CHECK(output.defined(), ValueError, name(), ": undefined model output");
  if (kind == LossKind::Custom) {
    ag::Variable r = call_custom(*this, output, target);
    if (!sample_weight.defined()) return r.dim() == 0 ? r : ag::mean(custom_per_sample(*this, output, r));
    PETAL_CHECK(r.dim() != 0, ValueError, "custom loss \"", custom_name,
                "\" returned a scalar; sample weights need per-sample losses [N]");
    return weighted_mean(name(), custom_per_sample(*this, output, r), sample_weight);
  }
  if (!sample_weight.defined()) {
    if (kind == LossKind::CategoricalCrossentropy || kind == LossKind::SparseCategoricalCrossentropy) {
      // The fused ops: one pass, no per-element temporaries.
      Tensor t = categorical_target(*this, output, target);
      return output_is_logits ? ag::softmax_cross_entropy(output, t) : ag::cross_entropy_from_probs(output, t);
    }
    return ag::mean(per_sample(output, target, output_is_logits));
  }
  return weighted_mean(name(), per_sample(output, target, output_is_logits), sample_weight);
}

Tensor one_hot(const Tensor& labels, std::int64_t num_classes) {
  PETAL_CHECK(labels.dtype() == DType::Int64 && labels.dim() == 1, ShapeError, "one_hot: labels must be int64 [N], got ",
              dtype_name(labels.dtype()), " ", shape_str(labels.shape()));
  return ops::one_hot(labels, num_classes);  // IndexError naming a label outside [0, num_classes)
}

}  // namespace petal::nn
