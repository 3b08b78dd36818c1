// Per-element formulas of the CUDA softmax family (host and device), the
// same max-shifted forms as kernels/ops_softmax.cpp. A row's kernel first
// reduces max and the shifted exp-sum, then applies these per element.
#pragma once

#include <cstdint>

#include "kernels/cuda/device_math.hpp"
#include "kernels/cuda/host_device.hpp"

namespace petal::cuda {

template <class T> PETAL_HD_INLINE T softmax_value(T x, T row_max, T exp_sum) { return math_exp(x - row_max) / exp_sum; }
template <class T> PETAL_HD_INLINE T log_softmax_value(T x, T row_max, T log_exp_sum) {
  return (x - row_max) - log_exp_sum;
}
// dot = sum(g * y) over the row.
template <class T> PETAL_HD_INLINE T softmax_backward_value(T g, T y, T dot) { return y * (g - dot); }
// sum_g = sum(g) over the row.
template <class T> PETAL_HD_INLINE T log_softmax_backward_value(T g, T log_y, T sum_g) {
  return g - math_exp(log_y) * sum_g;
}
// One class's term of the cross-entropy with probability target t.
template <class T> PETAL_HD_INLINE T cross_entropy_term(T t, T x, T row_max, T log_exp_sum) {
  return t * ((row_max - x) + log_exp_sum);
}
// The cross-entropy of a row with class label `label` (x_label its logit).
template <class T> PETAL_HD_INLINE T cross_entropy_label_loss(T x_label, T row_max, T log_exp_sum) {
  return (row_max - x_label) + log_exp_sum;
}
// d(loss)/d(logit) of one class: g * (p - t).
template <class T> PETAL_HD_INLINE T cross_entropy_backward_value(T g, T p, T t) { return g * (p - t); }

PETAL_HD_INLINE bool label_in_range(std::int64_t label, std::int64_t classes) { return label >= 0 && label < classes; }

}  // namespace petal::cuda
