// Per-channel formulas of the CUDA batch norm kernels over x [rows, C]
// (channels innermost), the terms their column reductions sum (see
// reduce_body.hpp), and the folding of moving statistics. Statistics are
// double: mean = sum / rows, biased variance = sum (x - mean)^2 / rows (two
// passes, as the CPU reference), inv_std = 1 / sqrt(var + eps).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cuda/conv/conv_body.hpp"
#include "kernels/cuda/conv/reduce_body.hpp"

namespace petal::cuda_body {

PETAL_HD_INLINE double inverse_std(double biased_variance, double epsilon) {
  return 1.0 / ::sqrt(biased_variance + epsilon);
}

// Pass 1: sum of x per channel.
template <class T>
struct ChannelSumTerm {
  const T* x;
  std::int64_t channels;
  PETAL_HD Sum2 operator()(std::int64_t r, std::int64_t c) const { return {double(x[r * channels + c]), 0.0}; }
};

// Pass 2: sum of (x - mean)^2 per channel, the mean taken from pass 1's sums.
template <class T>
struct SquaredDeviationTerm {
  const T* x;
  const Sum2* sums;  // [channels] from pass 1
  std::int64_t rows, channels;
  PETAL_HD Sum2 operator()(std::int64_t r, std::int64_t c) const {
    const double d = double(x[r * channels + c]) - sums[c].first / double(rows);
    return {d * d, 0.0};
  }
};

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
  const T *dy, *x, *gamma, *beta, *mean, *biased_variance;
  std::int64_t channels;
  double epsilon;
  bool relu6;
  PETAL_HD Sum2 operator()(std::int64_t r, std::int64_t c) const {
    const std::int64_t i = r * channels + c;
    const double xhat = (double(x[i]) - double(mean[c])) * inverse_std(double(biased_variance[c]), epsilon);
    const double g = batch_norm_masked_grad(dy[i], xhat, gamma[c], beta[c], relu6);
    return {g, g * xhat};
  }
};

// Input-gradient element i with the channel's (sum g, sum g * xhat).
template <class T>
PETAL_HD_INLINE T batch_norm_input_grad(T dy, T x, T gamma, T beta, T mean, T biased_variance, double epsilon,
                                        bool relu6, Sum2 sums, std::int64_t rows) {
  const double inv_std = inverse_std(double(biased_variance), epsilon);
  const double xhat = (double(x) - double(mean)) * inv_std;
  const double g = batch_norm_masked_grad(dy, xhat, gamma, beta, relu6);
  return T(double(gamma) * inv_std / double(rows) * (double(rows) * g - sums.first - xhat * sums.second));
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
