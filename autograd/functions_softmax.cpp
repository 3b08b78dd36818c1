// Differentiable softmax family over the last axis, and the cross-entropy
// losses (each the mean over the batch).
#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"

namespace petal::ag {

namespace {

constexpr double kKerasEpsilon = 1e-7;

// Checks logits/probabilities [N, C] with N > 0 and returns N.
std::int64_t batch_rows(const Variable& x, const char* op) {
  detail::check_defined(x, op);
  PETAL_CHECK(x.dim() == 2, ShapeError, op, ": expected [N, C], got ", shape_str(x.shape()));
  PETAL_CHECK(x.size(0) > 0 && x.size(1) > 0, ShapeError, op, ": empty batch ", shape_str(x.shape()));
  return x.size(0);
}

// A float target in the predictions' dtype (Keras casts labels the same way).
Tensor float_target(const Tensor& target, DType dtype) {
  return is_floating(target.dtype()) && target.dtype() != dtype ? target.to(dtype) : target;
}

// int64 class indices [N] -> one-hot [N, C] in `like`'s dtype and device.
Tensor one_hot(const Tensor& indices, const Tensor& like, const char* op) {
  const std::int64_t rows = like.size(0), classes = like.size(1);
  PETAL_CHECK(indices.dim() == 1 && indices.size(0) == rows, ShapeError, op, ": class indices of shape ",
              shape_str(indices.shape()), " for predictions of shape ", shape_str(like.shape()), " (expected [",
              rows, "])");
  const std::vector<std::int64_t> labels = indices.to_vector<std::int64_t>();
  std::vector<double> dense(static_cast<std::size_t>(rows * classes), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t label = labels[static_cast<std::size_t>(r)];
    PETAL_CHECK(label >= 0 && label < classes, IndexError, op, ": class index ", label, " in row ", r,
                " is outside [0, ", classes, ")");
    dense[static_cast<std::size_t>(r * classes + label)] = 1.0;
  }
  return from_vector(dense, {rows, classes}).to(like.dtype()).to(like.device());
}

// The loss gradient g (a scalar) spread evenly over the N rows, times factor.
Tensor per_row(const Tensor& g, std::int64_t rows, double factor) {
  return ops::mul_scalar(g.reshape({1}).expand({rows}).contiguous(), factor);
}

}  // namespace

Variable softmax(const Variable& a) {
  return detail::output_saving_op(a, "softmax", ops::softmax, ops::softmax_backward);
}

Variable log_softmax(const Variable& a) {
  return detail::output_saving_op(a, "log_softmax", ops::log_softmax, ops::log_softmax_backward);
}

Variable softmax_cross_entropy(const Variable& logits, const Tensor& target) {
  const char* op = "softmax_cross_entropy";
  const std::int64_t rows = batch_rows(logits, op);
  target.check_defined(op);
  const Tensor labels = float_target(target, logits.dtype());
  Tensor probs;
  const Tensor row_losses = ops::softmax_cross_entropy(logits.data(), labels, &probs);  // [N]
  return make_op_result(ops::mean(row_losses), op, {logits}, [probs, labels, rows](const Tensor& g) {
    return std::vector<Tensor>{
        ops::softmax_cross_entropy_backward(per_row(g, rows, 1.0 / static_cast<double>(rows)), probs, labels)};
  });
}

Variable cross_entropy_from_probs(const Variable& probs, const Tensor& target) {
  const char* op = "cross_entropy_from_probs";
  const std::int64_t rows = batch_rows(probs, op);
  target.check_defined(op);
  const Tensor labels = target.dtype() == DType::Int64 ? one_hot(target, probs.data(), op)
                                                       : float_target(target, probs.dtype());
  PETAL_CHECK(labels.shape() == probs.shape(), ShapeError, op, ": target of shape ", shape_str(labels.shape()),
              " for probabilities of shape ", shape_str(probs.shape()));
  // Clipping keeps log() finite when a probability saturates at 0 or 1.
  const Tensor clipped = ops::clamp(probs.data(), kKerasEpsilon, 1.0 - kKerasEpsilon);
  const Tensor row_losses = ops::neg(ops::sum(ops::mul(labels, ops::log(clipped)), {-1}));  // [N]
  return make_op_result(
      ops::mean(row_losses), op, {probs}, [p = probs.data(), clipped, labels, rows](const Tensor& g) {
        // d/dp of -mean(sum(t * log(clip(p)))) = -t / (N clip(p)) where the clip passes p through, 0 elsewhere.
        const Tensor scale = per_row(g, rows, -1.0 / static_cast<double>(rows)).reshape({rows, 1});
        Tensor grad = ops::mul(ops::div(labels, clipped), scale);
        grad = ops::relu_backward(grad, ops::add_scalar(p, -kKerasEpsilon));           // p > eps
        grad = ops::relu_backward(grad, ops::add_scalar(ops::neg(p), 1.0 - kKerasEpsilon));  // p < 1 - eps
        return std::vector<Tensor>{grad};
      });
}

}  // namespace petal::ag
