#include "nn/losses.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

Loss Loss::parse(std::string_view name) {
  if (name == "categorical_crossentropy") return categorical_crossentropy();
  if (name == "sparse_categorical_crossentropy") return sparse_categorical_crossentropy();
  throw ValueError(str_cat("unknown loss \"", name,
                           "\" (expected categorical_crossentropy or sparse_categorical_crossentropy)"));
}

std::string Loss::name() const {
  return kind == LossKind::CategoricalCrossentropy ? "categorical_crossentropy" : "sparse_categorical_crossentropy";
}

ag::Variable Loss::operator()(const ag::Variable& output, const Tensor& target, bool output_is_logits) const {
  PETAL_CHECK(output.dim() == 2, ShapeError, name(), ": model output must be [batch, classes], got ",
              shape_str(output.shape()));
  const std::int64_t n = output.size(0), c = output.size(1);
  Tensor t = target;
  if (kind == LossKind::CategoricalCrossentropy) {
    PETAL_CHECK(is_floating(t.dtype()), DTypeError, name(), ": targets must be one-hot floats [", n, ", ", c,
                "], got ", dtype_name(t.dtype()), " (use sparse_categorical_crossentropy for class indices)");
    PETAL_CHECK(t.shape() == Shape({n, c}), ShapeError, name(), ": targets ", shape_str(t.shape()),
                " do not match the output ", shape_str(output.shape()));
    if (t.dtype() != output.dtype()) t = t.to(output.dtype());
  } else {
    PETAL_CHECK(t.dtype() == DType::Int64, DTypeError, name(), ": targets must be int64 class indices [", n,
                "], got ", dtype_name(t.dtype()));
    if (t.dim() == 2 && t.size(1) == 1) t = t.reshape({n});
    PETAL_CHECK(t.shape() == Shape({n}), ShapeError, name(), ": targets ", shape_str(t.shape()),
                " do not match the batch of ", n);
  }
  return output_is_logits ? ag::softmax_cross_entropy(output, t) : ag::cross_entropy_from_probs(output, t);
}

Tensor one_hot(const Tensor& labels, std::int64_t num_classes) {
  PETAL_CHECK(labels.dtype() == DType::Int64 && labels.dim() == 1, ShapeError, "one_hot: labels must be int64 [N], got ",
              dtype_name(labels.dtype()), " ", shape_str(labels.shape()));
  std::vector<std::int64_t> values = labels.to_vector<std::int64_t>();
  Tensor out = zeros({labels.size(0), num_classes});
  float* p = out.data<float>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    PETAL_CHECK(values[i] >= 0 && values[i] < num_classes, IndexError, "one_hot: label ", values[i], " at ", i,
                " outside [0, ", num_classes, ")");
    p[static_cast<std::int64_t>(i) * num_classes + values[i]] = 1.0f;
  }
  return out;
}

}  // namespace petal::nn
