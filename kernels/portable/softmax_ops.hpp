// The softmax family over the last axis (softmax, log-softmax, their
// backward passes, softmax cross-entropy), defined once for every backend:
// the per-element formulas (host and device) in the max-shifted forms, so
// logits like +-1000 stay finite. A row first reduces its max m and
// s = sum(exp(x - m)) (reduce_ops.hpp), then applies these per element. The
// CPU float64 rows (kernels/ops_softmax.cpp) and the CUDA kernels
// (kernels/cuda/softmax.cu) use them; the per-ISA float32 row kernels
// (kernels/cpu/elementwise/softmax_kernels.cpp) compute the same forms on
// SIMD vectors.
#pragma once

#include <cstdint>

#include "kernels/portable/host_device.hpp"
#include "kernels/portable/math.hpp"

namespace petal::kernels {

// exp(x - m), the summand of s (and softmax before the division).
template <class T> PETAL_HD_INLINE T shifted_exp(T x, T row_max) { return math_exp(x - row_max); }
template <class T> PETAL_HD_INLINE T softmax_value(T x, T row_max, T exp_sum) {
  return shifted_exp(x, row_max) / exp_sum;
}
// (x - m) - log s rather than x - (m + log s): exact for the largest logit.
template <class T> PETAL_HD_INLINE T log_softmax_value(T x, T row_max, T log_exp_sum) {
  return (x - row_max) - log_exp_sum;
}
// dot = sum(g * y) over the row.
template <class T> PETAL_HD_INLINE T softmax_backward_value(T g, T y, T dot) { return y * (g - dot); }
// sum_g = sum(g) over the row.
template <class T> PETAL_HD_INLINE T log_softmax_backward_value(T g, T log_y, T sum_g) {
  return g - math_exp(log_y) * sum_g;
}
// One class's term of the cross-entropy with probability target t:
// t * (lse - x) with lse - x = (m - x) + log s, small even for huge logits.
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

}  // namespace petal::kernels
