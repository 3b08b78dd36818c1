#include "nn/metrics.hpp"

#include <algorithm>
#include <cmath>

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

namespace {

// The weight of element i of a batch whose samples hold per_sample elements each.
double element_weight(std::span<const double> weights, std::size_t i, std::size_t per_sample) {
  return weights.empty() ? 1.0 : weights[i / per_sample];
}

// Elements per sample of a batch of `elements` values over `samples` rows.
std::size_t per_sample(std::size_t elements, std::size_t samples) {
  return samples == 0 ? 1 : std::max<std::size_t>(elements / samples, 1);
}

// The elements of a host or device tensor as doubles (row-major).
std::vector<double> as_doubles(const Tensor& t) {
  Tensor h = t.to(Device::cpu()).contiguous();
  return (h.dtype() == DType::Float64 ? h : h.to(DType::Float64)).to_vector<double>();
}

// Output and target elements, checked to pair up one to one.
std::pair<std::vector<double>, std::vector<double>> paired(const char* metric, const Tensor& output,
                                                           const Tensor& target) {
  PETAL_CHECK(output.defined() && target.defined(), ValueError, metric, ": undefined output or target");
  PETAL_CHECK(output.numel() == target.numel() &&
                  (output.dim() == 0 || target.dim() == 0 || output.size(0) == target.size(0)),
              ShapeError, metric, ": targets ", shape_str(target.shape()), " do not match the output ",
              shape_str(output.shape()));
  return {as_doubles(output), as_doubles(target)};
}

// The batch's sample count for per-element weights (1 for a 0-d output).
std::size_t samples_of(const Tensor& output) { return output.dim() == 0 ? 1 : static_cast<std::size_t>(output.size(0)); }

}  // namespace

void Metric::check_totals(std::span<const double> totals, std::size_t expected) {
  PETAL_CHECK(totals.size() == expected, ShapeError, "metric: ", totals.size(), " totals for a metric that keeps ",
              expected);
}

void Metric::update(const Tensor& output, const Tensor& target, const Tensor& sample_weight) {
  if (!sample_weight.defined()) return accumulate(output, target, {});
  PETAL_CHECK(output.defined() && output.dim() >= 1, ShapeError,
              "metric: sample weights need an output with a batch axis, got ",
              output.defined() ? shape_str(output.shape()) : std::string("an undefined output"));
  const std::int64_t n = output.size(0);
  PETAL_CHECK(sample_weight.numel() == n && (sample_weight.dim() == 1 || (sample_weight.dim() == 2 && sample_weight.size(1) == 1)),
              ShapeError, "metric: sample weights ", shape_str(sample_weight.shape()),
              " must hold one weight per sample of the output ", shape_str(output.shape()), " ([", n, "] or [", n,
              ", 1])");
  const std::vector<double> w = as_doubles(sample_weight);
  for (std::size_t i = 0; i < w.size(); ++i)
    PETAL_CHECK(std::isfinite(w[i]) && w[i] >= 0.0, ValueError, "metric: sample weight ", w[i], " at ", i,
                " is negative or not finite");
  accumulate(output, target, w);
}

void Accuracy::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  std::vector<std::int64_t> predicted = predicted_classes(output);
  std::vector<std::int64_t> truth = target_classes(target);
  PETAL_CHECK(predicted.size() == truth.size(), ShapeError, "accuracy: ", predicted.size(), " outputs for ",
              truth.size(), " targets");
  for (std::size_t i = 0; i < truth.size(); ++i)
    add(predicted[i] == truth[i] ? 1.0 : 0.0, element_weight(weights, i, 1));
}

void BinaryAccuracy::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  auto [p, t] = paired("binary_accuracy", output, target);
  const std::size_t k = per_sample(p.size(), samples_of(output));
  for (std::size_t i = 0; i < p.size(); ++i)
    add((p[i] > threshold_ ? 1.0 : 0.0) == t[i] ? 1.0 : 0.0, element_weight(weights, i, k));
}

TopKCategoricalAccuracy::TopKCategoricalAccuracy(std::int64_t k) : k_(k) {
  PETAL_CHECK(k >= 1, ValueError, "top_k_categorical_accuracy: k must be at least 1, got ", k);
}

void TopKCategoricalAccuracy::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  PETAL_CHECK(output.dim() == 2, ShapeError, "top_k_categorical_accuracy: output must be [batch, classes], got ",
              shape_str(output.shape()));
  const std::int64_t n = output.size(0), c = output.size(1);
  std::vector<std::int64_t> truth = target_classes(target);
  PETAL_CHECK(static_cast<std::int64_t>(truth.size()) == n, ShapeError, "top_k_categorical_accuracy: ", n,
              " outputs for ", truth.size(), " targets");
  std::vector<double> p = as_doubles(output);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = truth[static_cast<std::size_t>(i)];
    PETAL_CHECK(y >= 0 && y < c, IndexError, "top_k_categorical_accuracy: class ", y, " at ", i, " outside [0, ", c,
                ")");
    const double* row = p.data() + i * c;
    const double score = row[y];
    const double w = element_weight(weights, static_cast<std::size_t>(i), 1);
    // like in_top_k: a non-finite score is never in the top k
    std::int64_t above = 0;
    for (std::int64_t j = 0; j < c; ++j) above += row[j] > score;
    add(std::isfinite(score) && above < k_ ? 1.0 : 0.0, w);
  }
}

void Precision::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  auto [p, t] = paired("precision", output, target);
  const std::size_t k = per_sample(p.size(), samples_of(output));
  for (std::size_t i = 0; i < p.size(); ++i) {
    const bool predicted = p[i] > threshold_, actual = t[i] != 0.0;
    const double w = element_weight(weights, i, k);
    tp_ += predicted && actual ? w : 0.0;
    fp_ += predicted && !actual ? w : 0.0;
    fn_ += !predicted && actual ? w : 0.0;
  }
}

double Precision::result() const { return tp_ + fp_ > 0 ? tp_ / (tp_ + fp_) : 0.0; }

double Recall::result() const { return tp_ + fn_ > 0 ? tp_ / (tp_ + fn_) : 0.0; }

AUC::AUC(std::int64_t num_thresholds) {
  PETAL_CHECK(num_thresholds > 1, ValueError, "auc: num_thresholds must be above 1, got ", num_thresholds);
  // Keras: [0 - eps] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + eps].
  constexpr double eps = 1e-7;
  thresholds_.push_back(0.0 - eps);
  for (std::int64_t i = 0; i < num_thresholds - 2; ++i)
    thresholds_.push_back(static_cast<double>(i + 1) / static_cast<double>(num_thresholds - 1));
  thresholds_.push_back(1.0 + eps);
  reset();
}

void AUC::reset() {
  tp_.assign(thresholds_.size(), 0.0);
  fp_.assign(thresholds_.size(), 0.0);
  positives_ = negatives_ = 0;
}

void AUC::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  auto [p, t] = paired("auc", output, target);
  const std::size_t k = per_sample(p.size(), samples_of(output));
  // Bucket each prediction by how many thresholds it exceeds, then count.
  std::vector<double> pos(thresholds_.size() + 1, 0.0), neg(thresholds_.size() + 1, 0.0);
  for (std::size_t i = 0; i < p.size(); ++i) {
    // Thresholds strictly below p[i] (p > threshold is a positive prediction).
    const std::size_t m =
        static_cast<std::size_t>(std::lower_bound(thresholds_.begin(), thresholds_.end(), p[i]) - thresholds_.begin());
    (t[i] != 0.0 ? pos : neg)[m] += element_weight(weights, i, k);
  }
  // Threshold j counts predictions exceeding it: buckets m > j.
  double above_pos = 0, above_neg = 0;
  for (std::size_t j = thresholds_.size(); j-- > 0;) {
    above_pos += pos[j + 1];
    above_neg += neg[j + 1];
    tp_[j] += above_pos;
    fp_[j] += above_neg;
  }
  for (std::size_t m = 0; m < pos.size(); ++m) {
    positives_ += pos[m];
    negatives_ += neg[m];
  }
}

std::vector<double> AUC::totals() const {
  std::vector<double> t(tp_);
  t.insert(t.end(), fp_.begin(), fp_.end());
  t.push_back(positives_);
  t.push_back(negatives_);
  return t;
}

void AUC::set_totals(std::span<const double> t) {
  const std::size_t n = thresholds_.size();
  check_totals(t, 2 * n + 2);
  tp_.assign(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n));
  fp_.assign(t.begin() + static_cast<std::ptrdiff_t>(n), t.begin() + static_cast<std::ptrdiff_t>(2 * n));
  positives_ = t[2 * n];
  negatives_ = t[2 * n + 1];
}

double AUC::result() const {
  if (positives_ <= 0 || negatives_ <= 0) return 0.0;
  double area = 0.0;
  for (std::size_t j = 0; j + 1 < thresholds_.size(); ++j) {
    const double tpr0 = tp_[j] / positives_, tpr1 = tp_[j + 1] / positives_;
    const double fpr0 = fp_[j] / negatives_, fpr1 = fp_[j + 1] / negatives_;
    area += (fpr0 - fpr1) * 0.5 * (tpr0 + tpr1);
  }
  return area;
}

void MeanAbsoluteError::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  auto [p, t] = paired("mean_absolute_error", output, target);
  const std::size_t k = per_sample(p.size(), samples_of(output));
  for (std::size_t i = 0; i < p.size(); ++i) add(std::abs(p[i] - t[i]), element_weight(weights, i, k));
}

void MeanSquaredError::accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) {
  auto [p, t] = paired("mean_squared_error", output, target);
  const std::size_t k = per_sample(p.size(), samples_of(output));
  for (std::size_t i = 0; i < p.size(); ++i) add((p[i] - t[i]) * (p[i] - t[i]), element_weight(weights, i, k));
}

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = {
      "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
      "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "precision", "recall", "auc",
      "mean_absolute_error", "mae", "mean_squared_error", "mse"};
  return names;
}

std::unique_ptr<Metric> make_metric(std::string_view name) {
  if (name == "accuracy" || name == "acc" || name == "categorical_accuracy" || name == "sparse_categorical_accuracy")
    return std::make_unique<Accuracy>();
  if (name == "binary_accuracy") return std::make_unique<BinaryAccuracy>();
  if (name == "top_k_categorical_accuracy") return std::make_unique<TopKCategoricalAccuracy>();
  if (name == "sparse_top_k_categorical_accuracy") return std::make_unique<SparseTopKCategoricalAccuracy>();
  if (name == "precision") return std::make_unique<Precision>();
  if (name == "recall") return std::make_unique<Recall>();
  if (name == "auc") return std::make_unique<AUC>();
  if (name == "mean_absolute_error" || name == "mae") return std::make_unique<MeanAbsoluteError>();
  if (name == "mean_squared_error" || name == "mse") return std::make_unique<MeanSquaredError>();
  std::string expected;
  for (const std::string& n : metric_names()) expected += (expected.empty() ? "" : ", ") + n;
  throw ValueError(str_cat("unknown metric \"", name, "\" (expected one of ", expected, ")"));
}

}  // namespace petal::nn
