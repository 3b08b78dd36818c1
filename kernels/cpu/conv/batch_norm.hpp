// Threaded float32 batch normalisation over the channel axis of a
// [rows, C] matrix (rows = N*H*W), with optional fused ReLU6.
//   training forward: 2 passes (statistics, then normalise + clamp);
//   backward: 2 passes (masked sums, then dx) that read dy and x only, the
//     ReLU6 mask recomputed from x, so no intermediate tensor is stored;
//   affine: inference (moving statistics folded into scale/shift), 1 pass.
// Statistics use float sums of (x - first row) over short runs, flushed to
// double: shifted sums avoid the cancellation of E[x^2] - E[x]^2.
#pragma once

#include <cstdint>

namespace petal::cpu {

// y = relu6?((x - mean) / sqrt(var + eps) * gamma + beta); mean and the
// biased variance of each channel are written out.
void batch_norm_training_forward(const float* x, std::int64_t rows, std::int64_t channels, const float* gamma,
                                 const float* beta, double epsilon, bool relu6, float* y, float* mean,
                                 float* biased_variance);
// out = relu6?((y - mean) / sqrt(var + eps) * gamma + beta) with given statistics.
void batch_norm_apply(const float* y, std::int64_t rows, std::int64_t channels, const float* gamma, const float* beta,
                      const float* mean, const float* biased_variance, double epsilon, bool relu6, float* out);
// y = relu6?(x * scale + shift) per channel; y may alias x.
void channel_affine(const float* x, std::int64_t rows, std::int64_t channels, const float* scale, const float* shift,
                    bool relu6, float* y);
// dx = dy * scale per channel, and 0 where not 0 < y < 6 when relu6: the
// gradient through a frozen (inference-mode) batch norm + ReLU6 taken from
// its output y, in one pass (y must be finite where relu6 is off).
void channel_scale_backward(const float* dy, const float* y, std::int64_t rows, std::int64_t channels,
                            const float* scale, bool relu6, float* dx);
// Inference batch norm folded per channel: scale = gamma / sqrt(var + eps),
// shift = beta - mean * scale (double arithmetic, rounded once to float).
void fold_batch_norm(const float* gamma, const float* beta, const float* mean, const float* var,
                     std::int64_t channels, double epsilon, float* scale, float* shift);
// Gradients of batch_norm_training_forward.
void batch_norm_backward(const float* dy, const float* x, std::int64_t rows, std::int64_t channels,
                         const float* gamma, const float* beta, const float* mean, const float* biased_variance,
                         double epsilon, bool relu6, float* dx, float* dgamma, float* dbeta);

}  // namespace petal::cpu
