// Per-channel batch statistics gathered while a kernel writes its output:
// the convolution drivers hand each freshly written (still cached) block of
// rows to add(), which saves batch norm a full pass over memory. Sums are of
// (y - shift), shift being the first output pixel, so that the variance
// E[(y-s)^2] - E[y-s]^2 does not cancel; float sums over short runs are
// flushed into double per chunk and chunks are added in order
// (deterministic for a given thread count).
#pragma once

#include <cstdint>
#include <vector>

namespace petal::cpu {

class ChannelStats {
 public:
  explicit ChannelStats(std::int64_t channels);
  // Called by the driver before its parallel loop: the number of chunks it will add to.
  void prepare(std::int64_t chunks);
  // Must be called once before add(): the first output pixel (channels values).
  void set_shift(const float* first_pixel);
  bool has_shift() const { return has_shift_; }
  // Adds whole pixels y[0, count) (count a multiple of channels) to chunk's sums.
  // Different chunks may be added from different threads at once.
  void add(std::int64_t chunk, const float* y, std::int64_t count);
  // Mean and biased variance of every channel over `rows` pixels.
  void finish(std::int64_t rows, float* mean, float* biased_variance);

 private:
  struct Chunk {
    std::vector<float> run_sum, run_sumsq;  // period-long float runs
    std::vector<double> sum, sumsq;         // per channel
    std::int64_t run_elements = 0;
  };
  void flush(Chunk& c);

  std::int64_t channels_, period_;
  std::vector<float> shift_;  // expanded to the period
  bool has_shift_ = false;
  std::vector<Chunk> chunks_;
};

}  // namespace petal::cpu
