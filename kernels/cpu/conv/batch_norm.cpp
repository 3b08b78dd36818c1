#include "kernels/cpu/conv/batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/conv/conv_parallel.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"

namespace petal::cpu {
namespace {

// Float sums run over at most this many periods before flushing into double.
constexpr std::int64_t kRunPeriods = 128;

std::vector<float> expand(const std::vector<float>& per_channel, std::int64_t period) {
  std::vector<float> out(static_cast<std::size_t>(period));
  const std::size_t c = per_channel.size();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = per_channel[i % c];
  return out;
}

// Two per-channel sums over the flat [rows, C] data: run(first, count, a, b)
// adds one run's contributions into the period-long float buffers a and b.
// Returns the channel sums in double, deterministic for a thread count.
template <class RunFn>
void reduce_two(std::int64_t total, std::int64_t channels, std::int64_t period, RunFn&& run, std::vector<double>& sum_a,
                std::vector<double>& sum_b) {
  const std::int64_t periods = (total + period - 1) / period;
  const std::int64_t chunks = chunk_count(periods, 32);
  std::vector<std::vector<double>> partial(static_cast<std::size_t>(chunks), std::vector<double>(static_cast<std::size_t>(2 * channels), 0.0));
  for_each_chunk(periods, chunks, [&](std::int64_t chunk, std::int64_t b, std::int64_t e) {
    std::vector<float> a(static_cast<std::size_t>(period)), bb(static_cast<std::size_t>(period));
    std::vector<double>& acc = partial[static_cast<std::size_t>(chunk)];
    for (std::int64_t s = b; s < e; s += kRunPeriods) {
      const std::int64_t first = s * period, last = std::min(std::min(s + kRunPeriods, e) * period, total);
      std::fill(a.begin(), a.end(), 0.0f);
      std::fill(bb.begin(), bb.end(), 0.0f);
      run(first, last - first, a.data(), bb.data());
      for (std::int64_t i = 0; i < period; ++i) {
        acc[static_cast<std::size_t>(i % channels)] += a[static_cast<std::size_t>(i)];
        acc[static_cast<std::size_t>(channels + i % channels)] += bb[static_cast<std::size_t>(i)];
      }
    }
  });
  sum_a.assign(static_cast<std::size_t>(channels), 0.0);
  sum_b.assign(static_cast<std::size_t>(channels), 0.0);
  for (const auto& p : partial)
    for (std::int64_t c = 0; c < channels; ++c) {
      sum_a[static_cast<std::size_t>(c)] += p[static_cast<std::size_t>(c)];
      sum_b[static_cast<std::size_t>(c)] += p[static_cast<std::size_t>(channels + c)];
    }
}

// Runs fn(first, count) over the flat data in parallel, cut at period boundaries.
template <class Fn>
void for_each_run(std::int64_t total, std::int64_t period, Fn&& fn) {
  const std::int64_t periods = (total + period - 1) / period;
  parallel_for(0, periods, std::max<std::int64_t>(1, 16384 / period), [&](std::int64_t b, std::int64_t e) {
    const std::int64_t first = b * period, last = std::min(e * period, total);
    fn(first, last - first);
  });
}

}  // namespace

void batch_norm_training_forward(const float* x, std::int64_t rows, std::int64_t channels, const float* gamma,
                                 const float* beta, double epsilon, bool relu6, float* y, float* mean,
                                 float* biased_variance) {
  const ChannelKernels& k = channel_kernels();
  const std::int64_t period = channel_period(channels, k.lanes), total = rows * channels;
  const std::vector<float> shift = expand(std::vector<float>(x, x + channels), period);
  std::vector<double> sum, sumsq;
  reduce_two(
      total, channels, period,
      [&](std::int64_t first, std::int64_t count, float* a, float* b) {
        k.shifted_sums(x + first, count, period, shift.data(), a, b);
      },
      sum, sumsq);
  for (std::int64_t c = 0; c < channels; ++c) {
    const double d = sum[static_cast<std::size_t>(c)] / double(rows);
    mean[c] = float(double(x[c]) + d);
    biased_variance[c] = float(std::max(sumsq[static_cast<std::size_t>(c)] / double(rows) - d * d, 0.0));
  }
  batch_norm_apply(x, rows, channels, gamma, beta, mean, biased_variance, epsilon, relu6, y);
}

void batch_norm_apply(const float* y, std::int64_t rows, std::int64_t channels, const float* gamma, const float* beta,
                      const float* mean, const float* biased_variance, double epsilon, bool relu6, float* out) {
  std::vector<float> scale(static_cast<std::size_t>(channels)), offset(static_cast<std::size_t>(channels));
  for (std::int64_t c = 0; c < channels; ++c) {
    const double s = double(gamma[c]) / std::sqrt(double(biased_variance[c]) + epsilon);
    scale[static_cast<std::size_t>(c)] = float(s);
    offset[static_cast<std::size_t>(c)] = float(double(beta[c]) - double(mean[c]) * s);
  }
  channel_affine(y, rows, channels, scale.data(), offset.data(), relu6, out);
}

void channel_affine(const float* x, std::int64_t rows, std::int64_t channels, const float* scale, const float* shift,
                    bool relu6, float* y) {
  const ChannelKernels& k = channel_kernels();
  const std::int64_t period = channel_period(channels, k.lanes);
  const std::vector<float> s = expand(std::vector<float>(scale, scale + channels), period);
  const std::vector<float> t = expand(std::vector<float>(shift, shift + channels), period);
  // A new output larger than the cache goes past it: the next layer could
  // not find it there anyway, and the stores skip the read-for-ownership.
  const bool stream = y != x && rows * channels * std::int64_t{sizeof(float)} >= kStreamOutputThresholdBytes;
  for_each_run(rows * channels, period, [&](std::int64_t first, std::int64_t count) {
    k.affine(x + first, count, period, s.data(), t.data(), y + first, relu6, stream);
  });
}

void channel_scale_backward(const float* dy, const float* y, std::int64_t rows, std::int64_t channels,
                            const float* scale, bool relu6, float* dx) {
  // The batch-norm backward apply kernel with the mask taken from y itself
  // (unit scale, zero shift) and dx = dy * scale (k_x = k_c = 0).
  const ChannelKernels& k = channel_kernels();
  const std::int64_t period = channel_period(channels, k.lanes), total = rows * channels;
  const std::vector<float> unit(static_cast<std::size_t>(period), 1.0f), zero(static_cast<std::size_t>(period), 0.0f);
  const std::vector<float> scale_p = expand(std::vector<float>(scale, scale + channels), period);
  const bool stream = dx != dy && dx != y && total * std::int64_t{sizeof(float)} >= kStreamOutputThresholdBytes;
  for_each_run(total, period, [&](std::int64_t first, std::int64_t count) {
    k.bn_backward_apply(dy + first, y + first, count, period, unit.data(), zero.data(), relu6, scale_p.data(),
                        zero.data(), zero.data(), dx + first, stream);
  });
}

void batch_norm_backward(const float* dy, const float* x, std::int64_t rows, std::int64_t channels,
                         const float* gamma, const float* beta, const float* mean, const float* biased_variance,
                         double epsilon, bool relu6, float* dx, float* dgamma, float* dbeta) {
  const ChannelKernels& k = channel_kernels();
  const std::int64_t period = channel_period(channels, k.lanes), total = rows * channels;
  std::vector<float> scale(static_cast<std::size_t>(channels)), shift(static_cast<std::size_t>(channels)), mu(mean, mean + channels);
  std::vector<double> inv_std(static_cast<std::size_t>(channels));
  for (std::int64_t c = 0; c < channels; ++c) {
    inv_std[static_cast<std::size_t>(c)] = 1.0 / std::sqrt(double(biased_variance[c]) + epsilon);
    const double s = double(gamma[c]) * inv_std[static_cast<std::size_t>(c)];
    scale[static_cast<std::size_t>(c)] = float(s);
    shift[static_cast<std::size_t>(c)] = float(double(beta[c]) - double(mean[c]) * s);
  }
  const std::vector<float> scale_p = expand(scale, period), shift_p = expand(shift, period), mean_p = expand(mu, period);
  std::vector<double> sum_g, sum_gxc;
  reduce_two(
      total, channels, period,
      [&](std::int64_t first, std::int64_t count, float* a, float* b) {
        k.bn_backward_sums(dy + first, x + first, count, period, scale_p.data(), shift_p.data(), mean_p.data(), relu6,
                           a, b);
      },
      sum_g, sum_gxc);
  std::vector<float> k_g(static_cast<std::size_t>(channels)), k_x(static_cast<std::size_t>(channels)), k_c(static_cast<std::size_t>(channels));
  const double m = double(rows);
  for (std::int64_t c = 0; c < channels; ++c) {
    const std::size_t i = static_cast<std::size_t>(c);
    const double is = inv_std[i], dg = sum_gxc[i] * is, db = sum_g[i];
    dgamma[c] = float(dg);
    dbeta[c] = float(db);
    // dx = gamma * is / m * (m * g - db - xhat * dg), xhat = (x - mean) * is
    const double kg = double(gamma[c]) * is;
    const double kx = -kg * is * dg / m;
    k_g[i] = float(kg);
    k_x[i] = float(kx);
    k_c[i] = float(-kg * db / m - kx * double(mean[c]));
  }
  const std::vector<float> kg_p = expand(k_g, period), kx_p = expand(k_x, period), kc_p = expand(k_c, period);
  const bool stream = dx != dy && dx != x && total * std::int64_t{sizeof(float)} >= kStreamOutputThresholdBytes;
  for_each_run(total, period, [&](std::int64_t first, std::int64_t count) {
    k.bn_backward_apply(dy + first, x + first, count, period, scale_p.data(), shift_p.data(), relu6, kg_p.data(),
                        kx_p.data(), kc_p.data(), dx + first, stream);
  });
}

void fold_batch_norm(const float* gamma, const float* beta, const float* mean, const float* var,
                     std::int64_t channels, double epsilon, float* scale, float* shift) {
  channel_kernels().fold_batch_norm(gamma, beta, mean, var, channels, epsilon, scale, shift);
}

}  // namespace petal::cpu
