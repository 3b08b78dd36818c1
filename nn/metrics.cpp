#include "nn/metrics.hpp"

#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace petal::nn {

std::vector<std::int64_t> predicted_classes(const Tensor& output) {
  PETAL_CHECK(output.dim() == 2, ShapeError, "accuracy: output must be [batch, classes], got ",
              shape_str(output.shape()));
  return ops::argmax(output, 1).to_vector<std::int64_t>();
}

std::vector<std::int64_t> target_classes(const Tensor& target) {
  if (target.dtype() == DType::Int64) return target.reshape({-1}).to_vector<std::int64_t>();
  PETAL_CHECK(target.dim() == 2, ShapeError, "accuracy: one-hot targets must be [batch, classes], got ",
              shape_str(target.shape()));
  return ops::argmax(target, 1).to_vector<std::int64_t>();
}

std::vector<std::vector<std::int64_t>> confusion_matrix(const std::vector<std::int64_t>& truth,
                                                        const std::vector<std::int64_t>& predicted,
                                                        std::int64_t num_classes) {
  PETAL_CHECK(truth.size() == predicted.size(), ShapeError, "confusion_matrix: ", truth.size(), " targets, ",
              predicted.size(), " predictions");
  std::vector<std::vector<std::int64_t>> m(static_cast<std::size_t>(num_classes),
                                           std::vector<std::int64_t>(static_cast<std::size_t>(num_classes), 0));
  for (std::size_t i = 0; i < truth.size(); ++i) {
    PETAL_CHECK(truth[i] >= 0 && truth[i] < num_classes && predicted[i] >= 0 && predicted[i] < num_classes,
                IndexError, "confusion_matrix: class ", truth[i], " / ", predicted[i], " at ", i, " outside [0, ",
                num_classes, ")");
    ++m[static_cast<std::size_t>(truth[i])][static_cast<std::size_t>(predicted[i])];
  }
  return m;
}

void Accuracy::update(const Tensor& output, const Tensor& target) {
  std::vector<std::int64_t> predicted = predicted_classes(output);
  std::vector<std::int64_t> truth = target_classes(target);
  PETAL_CHECK(predicted.size() == truth.size(), ShapeError, "accuracy: ", predicted.size(), " outputs for ",
              truth.size(), " targets");
  for (std::size_t i = 0; i < truth.size(); ++i) correct_ += predicted[i] == truth[i];
  total_ += static_cast<std::int64_t>(truth.size());
}

}  // namespace petal::nn
