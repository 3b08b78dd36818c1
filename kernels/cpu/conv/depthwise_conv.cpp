#include "kernels/cpu/conv/depthwise_conv.hpp"

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv/channel_stats.hpp"
#include "kernels/cpu/conv/conv_parallel.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"

namespace petal::cpu {

bool depthwise_fast_path(const ConvGeometry& g) {
  auto taps_per_pixel = [](std::int64_t k, std::int64_t s) { return (k + s - 1) / s; };
  return taps_per_pixel(g.kernel_h, g.stride_h) <= 16 && taps_per_pixel(g.kernel_w, g.stride_w) <= 16;
}

void depthwise_forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
                       ChannelStats* stats) {
  const DepthwiseKernels& k = depthwise_kernels();
  const std::int64_t rows = g.batch * g.out_h, c = g.in_c;
  if (stats == nullptr) {
    // Streamed when input and output together overflow the cache: then the
    // next layer would not find the output there anyway (its sequential
    // read evicts the tail before it gets there), and skipping the
    // read-for-ownership saves a third of the traffic. (A 24x24x192 layer
    // at batch 64: 28 + 28 MB, 1.4-1.8 -> 1.05-1.15 ms.)
    ConvGeometry streamed = g;
    const std::int64_t bytes = (rows * g.out_w + g.input_pixels()) * c * std::int64_t{sizeof(float)};
    streamed.stream_output = bytes >= kStreamOutputThresholdBytes;
    parallel_for(0, rows, 1,
                 [&](std::int64_t r0, std::int64_t r1) { k.forward(x, w, bias, y, streamed, relu6, r0, r1); });
    return;
  }
  // Shift: output pixel 0 by plain loops.
  std::vector<float> first(static_cast<std::size_t>(c));
  for (std::int64_t ch = 0; ch < c; ++ch) {
    float a = bias ? bias[ch] : 0.0f;
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const std::int64_t iy = ky - g.pad_top, ix = kx - g.pad_left;
        if (iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w)
          a += x[(iy * g.in_w + ix) * c + ch] * w[(ky * g.kernel_w + kx) * c + ch];
      }
    first[static_cast<std::size_t>(ch)] = a;
  }
  stats->set_shift(first.data());
  const std::int64_t chunks = chunk_count(rows, 1);
  stats->prepare(chunks);
  // A few rows at a time: the kernel computes pairs of rows together, and
  // the statistics read the rows while they are still in cache.
  constexpr std::int64_t kRowsPerStep = 4;
  for_each_chunk(rows, chunks, [&](std::int64_t chunk, std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; r += kRowsPerStep) {
      const std::int64_t r_end = std::min(r + kRowsPerStep, r1);
      k.forward(x, w, bias, y, g, relu6, r, r_end);
      stats->add(chunk, y + r * g.out_w * c, (r_end - r) * g.out_w * c);
    }
  });
}

void depthwise_backward_input(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  const DepthwiseKernels& k = depthwise_kernels();
  parallel_for(0, g.batch * g.in_h, 1, [&](std::int64_t r0, std::int64_t r1) { k.backward_input(dy, w, dx, g, r0, r1); });
}

void depthwise_backward_kernel(const float* dy, const float* x, float* dw, float* dbias, const ConvGeometry& g) {
  const DepthwiseKernels& k = depthwise_kernels();
  const std::int64_t c = g.in_c, dw_size = g.taps() * c, rows = g.batch * g.out_h;
  const std::int64_t chunks = chunk_count(rows, 4);
  // Per chunk: dw [taps * C] then dbias [C].
  std::vector<std::vector<float>> partial(static_cast<std::size_t>(chunks));
  for_each_chunk(rows, chunks, [&](std::int64_t chunk, std::int64_t r0, std::int64_t r1) {
    std::vector<float>& acc = partial[static_cast<std::size_t>(chunk)];
    acc.assign(static_cast<std::size_t>(dw_size + c), 0.0f);
    k.backward_kernel(dy, x, acc.data(), dbias ? acc.data() + dw_size : nullptr, g, r0, r1);
  });
  for (std::int64_t i = 0; i < dw_size + c; ++i) {
    float s = 0.0f;
    for (const auto& p : partial) s += p[static_cast<std::size_t>(i)];
    if (i < dw_size) {
      dw[i] = s;
    } else if (dbias != nullptr) {
      dbias[i - dw_size] = s;
    }
  }
}

}  // namespace petal::cpu
