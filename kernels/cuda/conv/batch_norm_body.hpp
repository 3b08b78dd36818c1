// Per-channel formulas of the CUDA batch norm kernels over x [rows, C]
// (channels innermost), the terms their column reductions sum (see
// reduce_body.hpp), and the folding of moving statistics. Statistics come
// from one pass of double sums: mean = sum x / rows, biased variance =
// sum x^2 / rows - mean^2 (in double the cancellation costs nothing a float32
// input can show), inv_std = 1 / sqrt(var + eps), computed once per channel.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cuda/conv/conv_body.hpp"
#include "kernels/cuda/conv/reduce_body.hpp"

namespace petal::cuda_body {

PETAL_HD_INLINE double inverse_std(double biased_variance, double epsilon) {
  return 1.0 / ::sqrt(biased_variance + epsilon);
}

// Sum of x per channel (bias gradients).
template <class T>
struct ChannelSumTerm {
  const T* x;
  std::int64_t channels;
  PETAL_HD Sum2 operator()(std::int64_t r, std::int64_t c) const { return {double(x[r * channels + c]), 0.0}; }
};

// (sum x, sum x^2) per channel: the batch statistics in one pass.
template <class T>
struct ChannelMomentsTerm {
  const T* x;
  std::int64_t channels;
  PETAL_HD Sum2 operator()(std::int64_t r, std::int64_t c) const {
    const double v = double(x[r * channels + c]);
    return {v, v * v};
  }
};

struct ChannelStats {
  double mean, biased_variance;
};
PETAL_HD_INLINE ChannelStats channel_stats(Sum2 moments, std::int64_t rows) {
  const double mean = moments.first / double(rows);
  const double variance = moments.second / double(rows) - mean * mean;
  return {mean, variance > 0.0 ? variance : 0.0};
}

// What the elementwise passes need per channel.
struct MeanInvStd {
  double mean, inv_std;
};
PETAL_HD_INLINE MeanInvStd mean_inv_std(double mean, double biased_variance, double epsilon) {
  return {mean, inverse_std(biased_variance, epsilon)};
}

// Forward element: normalise, scale, shift, optional ReLU6.
template <class T>
PETAL_HD_INLINE T batch_norm_element(T x, double mean, double inv_std, T gamma, T beta, bool relu6) {
  const T v = T((double(x) - mean) * inv_std) * gamma + beta;
  return relu6 ? clamp_relu6(v) : v;
}

// The gradient that reaches the normalised value: dy, or zero where the
// fused ReLU6 was flat (pre-activation outside (0, 6)).
template <class T>
PETAL_HD_INLINE double batch_norm_masked_grad(T dy, double xhat, T gamma, T beta, bool relu6) {
  if (relu6) {
    const double pre = xhat * double(gamma) + double(beta);
    if (!(pre > 0.0 && pre < 6.0)) return 0.0;
  }
  return double(dy);
}

// Backward reduction: (sum g, sum g * xhat) per channel; dbeta and dgamma.
template <class T>
struct BatchNormBackwardTerm {
  const T *dy, *x, *gamma, *beta;
  const MeanInvStd* stats;  // [channels]
  std::int64_t channels;
  bool relu6;
  PETAL_HD Sum2 operator()(std::int64_t r, std::int64_t c) const {
    const std::int64_t i = r * channels + c;
    const double xhat = (double(x[i]) - stats[c].mean) * stats[c].inv_std;
    const double g = batch_norm_masked_grad(dy[i], xhat, gamma[c], beta[c], relu6);
    return {g, g * xhat};
  }
};

// Input-gradient element with the channel's statistics and (sum g, sum g * xhat).
template <class T>
PETAL_HD_INLINE T batch_norm_input_grad(T dy, T x, T gamma, T beta, MeanInvStd stats, bool relu6, Sum2 sums,
                                        std::int64_t rows) {
  const double xhat = (double(x) - stats.mean) * stats.inv_std;
  const double g = batch_norm_masked_grad(dy, xhat, gamma, beta, relu6);
  return T(double(gamma) * stats.inv_std / double(rows) * (double(rows) * g - sums.first - xhat * sums.second));
}

// Folded inference batch norm: y = x * scale + shift.
struct FoldedChannel {
  double scale, shift;
};
PETAL_HD_INLINE FoldedChannel fold_channel(double gamma, double beta, double mean, double variance, double epsilon) {
  const double scale = gamma / ::sqrt(variance + epsilon);
  return {scale, beta - mean * scale};
}

template <class T>
PETAL_HD_INLINE T channel_affine_element(T x, T scale, T shift, bool relu6) {
  const T v = x * scale + shift;
  return relu6 ? clamp_relu6(v) : v;
}

// moving = moving * momentum + batch * factor * (1 - momentum), factor being
// count / (count - 1) for the variance (1 when count is 1) and 1 for the mean.
PETAL_HD_INLINE double moving_average(double moving, double batch, double factor, double momentum) {
  return moving * momentum + batch * factor * (1.0 - momentum);
}
PETAL_HD_INLINE double unbiased_factor(std::int64_t count) {
  return count > 1 ? double(count) / double(count - 1) : 1.0;
}

}  // namespace petal::cuda_body
