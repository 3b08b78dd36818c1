// Streaming metrics with Keras's names and defaults. Each accumulates over
// update() calls (batches) until reset(); result() is the figure over all of
// them. update() takes host tensors: the model's output (probabilities where
// the metric thresholds them), the batch's targets and optionally one weight
// per sample (Keras's weighted_metrics): a sample's weight applies to each of
// its elements, so every figure becomes a weighted mean (precision, recall and
// AUC weighted counts), and a weight of 0 removes a sample.
//
//   Accuracy                       arg-max equals the target class (one-hot or int64 indices)
//   BinaryAccuracy(0.5)            (output > threshold) == target, over all elements
//   TopKCategoricalAccuracy(5)     the one-hot target's class is among the k largest outputs
//   SparseTopKCategoricalAccuracy(5)  the same with int64 class indices
//   Precision(0.5), Recall(0.5)    tp / (tp + fp), tp / (tp + fn) over all elements
//   AUC(200)                       ROC AUC: Keras's 200 thresholds, trapezoid rule
//   MeanAbsoluteError, MeanSquaredError   over all elements
//   Mean                           weighted running mean of any scalar (the loss)
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.hpp"

namespace petal::nn {

// A streaming metric on (output, target) batches.
class Metric {
 public:
  virtual ~Metric() = default;
  // sample_weight: undefined (every sample weighs 1), or one finite,
  // non-negative weight per sample: [batch] or [batch, 1].
  void update(const Tensor& output, const Tensor& target, const Tensor& sample_weight = Tensor());
  virtual double result() const = 0;
  virtual void reset() = 0;
  // update() with the weights already checked and on the host: empty (all 1)
  // or one per sample (the output's first axis).
  virtual void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) = 0;
  // The sums result() derives from, in a fixed order: data-parallel training
  // adds them across replicas and sets them back (set_totals checks the length).
  virtual std::vector<double> totals() const = 0;
  virtual void set_totals(std::span<const double> totals) = 0;

 protected:
  // Throws unless totals holds `expected` values.
  static void check_totals(std::span<const double> totals, std::size_t expected);
};

// A metric that is a weighted mean: sum / weight (0 before any weight), for
// accuracies (the weight of hits over the weight of samples) and errors.
class WeightedMeanMetric : public Metric {
 public:
  double result() const override { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  void reset() override { sum_ = weight_ = 0; }
  std::vector<double> totals() const override { return {sum_, weight_}; }
  void set_totals(std::span<const double> t) override {
    check_totals(t, 2);
    sum_ = t[0];
    weight_ = t[1];
  }

 protected:
  void add(double value, double weight) {
    sum_ += value * weight;
    weight_ += weight;
  }

 private:
  double sum_ = 0.0, weight_ = 0.0;
};

// Fraction of rows whose arg-max output equals the target class: the arg-max
// of a one-hot float target [N, C], or int64 indices [N]. Logits and
// probabilities give the same arg-max, so either output works.
class Accuracy : public WeightedMeanMetric {
 public:
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;
};

// Weighted running mean (loss averaged over samples, not batches).
class Mean {
 public:
  void update(double value, double weight = 1.0) {
    sum_ += value * weight;
    weight_ += weight;
  }
  double result() const { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  void reset() { sum_ = weight_ = 0.0; }
  // {sum, weight}, for adding across replicas (Metric::totals).
  std::vector<double> totals() const { return {sum_, weight_}; }
  void set_totals(double sum, double weight) {
    sum_ = sum;
    weight_ = weight;
  }

 private:
  double sum_ = 0.0, weight_ = 0.0;
};

// Fraction of elements where (output > threshold) equals the target (0/1
// floats, or int64), targets with the output's element count. Keras averages
// per sample first; with the same number of elements per sample that is the
// same figure.
class BinaryAccuracy : public WeightedMeanMetric {
 public:
  explicit BinaryAccuracy(double threshold = 0.5) : threshold_(threshold) {}
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;

 private:
  double threshold_;
};

// Fraction of rows whose target class is among the k largest outputs of the
// row [N, C] (tf.math.in_top_k: classes tied with the k-th largest count as in
// the top k). Targets: one-hot floats [N, C] (TopKCategoricalAccuracy) or int64
// indices [N] (SparseTopKCategoricalAccuracy); either class accepts either.
class TopKCategoricalAccuracy : public WeightedMeanMetric {
 public:
  explicit TopKCategoricalAccuracy(std::int64_t k = 5);
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;

 private:
  std::int64_t k_;
};
class SparseTopKCategoricalAccuracy : public TopKCategoricalAccuracy {
 public:
  using TopKCategoricalAccuracy::TopKCategoricalAccuracy;
};

// Precision and recall of (output > threshold) against targets != 0, over all
// elements (Keras flattens multi-label outputs). 0 when undefined (no
// predicted, resp. no actual, positive), as Keras's divide_no_nan.
class Precision : public Metric {
 public:
  explicit Precision(double threshold = 0.5) : threshold_(threshold) {}
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;
  double result() const override;
  void reset() override { tp_ = fp_ = fn_ = 0; }
  std::vector<double> totals() const override { return {tp_, fp_, fn_}; }
  void set_totals(std::span<const double> t) override {
    check_totals(t, 3);
    tp_ = t[0];
    fp_ = t[1];
    fn_ = t[2];
  }

 protected:
  double threshold_;
  double tp_ = 0, fp_ = 0, fn_ = 0;  // weighted counts
};
class Recall : public Precision {
 public:
  using Precision::Precision;
  double result() const override;
};

// Area under the ROC curve like Keras's AUC() defaults: num_thresholds = 200
// thresholds {-1e-7, 1/199, 2/199, ..., 198/199, 1 + 1e-7}; at each, the
// true- and false-positive rates of (output > threshold) against targets != 0
// over all elements; the area by the trapezoid rule over those points. It
// approximates the exact AUC (the probability that a random positive outranks
// a random negative, ties half) to within the gaps between thresholds; 0 when
// there are no positives or no negatives.
class AUC : public Metric {
 public:
  explicit AUC(std::int64_t num_thresholds = 200);
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;
  double result() const override;
  void reset() override;
  std::vector<double> totals() const override;
  void set_totals(std::span<const double> totals) override;
  const std::vector<double>& thresholds() const { return thresholds_; }

 private:
  std::vector<double> thresholds_;
  // Per threshold: positives / negatives with output > threshold (weighted counts).
  std::vector<double> tp_, fp_;
  double positives_ = 0, negatives_ = 0;
};

// Mean of |output - target| (resp. (output - target)^2) over all elements;
// targets with the output's element count.
class MeanAbsoluteError : public WeightedMeanMetric {
 public:
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;
};
class MeanSquaredError : public MeanAbsoluteError {
 public:
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override;
};

// A metric by its Keras name: accuracy/acc, binary_accuracy, categorical_accuracy,
// sparse_categorical_accuracy, top_k_categorical_accuracy,
// sparse_top_k_categorical_accuracy, precision, recall, auc,
// mean_absolute_error/mae, mean_squared_error/mse. ValueError otherwise.
std::unique_ptr<Metric> make_metric(std::string_view name);
// The names make_metric accepts, for error messages.
const std::vector<std::string>& metric_names();

// The predicted class of each row of a [N, C] output, and the true class of a
// one-hot [N, C] or index [N] target.
std::vector<std::int64_t> predicted_classes(const Tensor& output);
std::vector<std::int64_t> target_classes(const Tensor& target);

// counts[true][predicted] over classes 0..num_classes-1 (IndexError outside).
std::vector<std::vector<std::int64_t>> confusion_matrix(const std::vector<std::int64_t>& truth,
                                                        const std::vector<std::int64_t>& predicted,
                                                        std::int64_t num_classes);

}  // namespace petal::nn
