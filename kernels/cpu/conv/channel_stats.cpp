#include "kernels/cpu/conv/channel_stats.hpp"

#include <algorithm>

#include "kernels/cpu/conv/conv_parallel.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"

namespace petal::cpu {
namespace {
// Elements a float run may gather before it is flushed into double.
constexpr std::int64_t kRunElements = 1 << 16;
}  // namespace

ChannelStats::ChannelStats(std::int64_t channels)
    : channels_(channels), period_(channel_period(channels, channel_kernels().lanes)) {}

void ChannelStats::prepare(std::int64_t chunks) {
  chunks_.clear();
  chunks_.resize(static_cast<std::size_t>(std::max<std::int64_t>(chunks, 1)));
  for (Chunk& c : chunks_) {
    c.run_sum.assign(static_cast<std::size_t>(period_), 0.0f);
    c.run_sumsq.assign(static_cast<std::size_t>(period_), 0.0f);
    c.sum.assign(static_cast<std::size_t>(channels_), 0.0);
    c.sumsq.assign(static_cast<std::size_t>(channels_), 0.0);
  }
}

void ChannelStats::set_shift(const float* first_pixel) {
  shift_.resize(static_cast<std::size_t>(period_));
  for (std::int64_t i = 0; i < period_; ++i) shift_[static_cast<std::size_t>(i)] = first_pixel[i % channels_];
  has_shift_ = true;
}

void ChannelStats::add(std::int64_t chunk, const float* y, std::int64_t count) {
  Chunk& c = chunks_[static_cast<std::size_t>(chunk)];
  channel_kernels().shifted_sums(y, count, period_, shift_.data(), c.run_sum.data(), c.run_sumsq.data());
  c.run_elements += count;
  if (c.run_elements >= kRunElements) flush(c);
}

void ChannelStats::flush(Chunk& c) {
  for (std::int64_t i = 0; i < period_; ++i) {
    const std::size_t p = static_cast<std::size_t>(i), ch = static_cast<std::size_t>(i % channels_);
    c.sum[ch] += c.run_sum[p];
    c.sumsq[ch] += c.run_sumsq[p];
  }
  std::fill(c.run_sum.begin(), c.run_sum.end(), 0.0f);
  std::fill(c.run_sumsq.begin(), c.run_sumsq.end(), 0.0f);
  c.run_elements = 0;
}

void ChannelStats::finish(std::int64_t rows, float* mean, float* biased_variance) {
  for (Chunk& c : chunks_) flush(c);
  for (std::int64_t ch = 0; ch < channels_; ++ch) {
    double s = 0.0, ss = 0.0;
    for (const Chunk& c : chunks_) {
      s += c.sum[static_cast<std::size_t>(ch)];
      ss += c.sumsq[static_cast<std::size_t>(ch)];
    }
    const double d = s / double(rows);
    mean[ch] = float(double(shift_[static_cast<std::size_t>(ch)]) + d);
    biased_variance[ch] = float(std::max(ss / double(rows) - d * d, 0.0));
  }
}

}  // namespace petal::cpu
