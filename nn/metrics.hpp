// Streaming metrics: accuracy (categorical or sparse, chosen by the target's
// dtype) and the running mean of the loss.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace petal::nn {

// Fraction of rows whose arg-max output equals the target class: the arg-max
// of a one-hot float target [N, C], or int64 indices [N]. Logits and
// probabilities give the same arg-max, so either output works.
class Accuracy {
 public:
  void update(const Tensor& output, const Tensor& target);
  double result() const { return total_ ? static_cast<double>(correct_) / static_cast<double>(total_) : 0.0; }
  std::int64_t count() const { return total_; }
  void reset() { correct_ = total_ = 0; }

 private:
  std::int64_t correct_ = 0, total_ = 0;
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

 private:
  double sum_ = 0.0, weight_ = 0.0;
};

// The predicted class of each row of a [N, C] output, and the true class of a
// one-hot [N, C] or index [N] target.
std::vector<std::int64_t> predicted_classes(const Tensor& output);
std::vector<std::int64_t> target_classes(const Tensor& target);

// counts[true][predicted] over classes 0..num_classes-1 (IndexError outside).
std::vector<std::vector<std::int64_t>> confusion_matrix(const std::vector<std::int64_t>& truth,
                                                        const std::vector<std::int64_t>& predicted,
                                                        std::int64_t num_classes);

}  // namespace petal::nn
