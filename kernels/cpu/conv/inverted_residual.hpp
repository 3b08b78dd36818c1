// MobileNetV2's inverted-residual block in inference, as one pass per band
// of output rows:
//
//   expand   1x1 convolution, folded batch norm as scale and shift, ReLU6
//            (optional: block 0 has none)
//   depthwise 3x3, stride 1 or 2, batch norm folded into its kernel and bias,
//            ReLU6
//   project  1x1 convolution, folded batch norm as scale and shift
//   (+ x)    the residual, when the block keeps its input's shape
//
// Run layer by layer, the expanded tensor (6x the block's input, 3.5 MB per
// image for block 1 at 192x192) goes to memory and comes back for the
// depthwise layer, which then waits on its loads. Here each thread computes
// the expanded rows a band of output rows needs into a buffer that stays in
// its L2 cache, keeps the rows the next band shares (the depthwise window
// overlaps), runs the depthwise kernel from that buffer into a second one,
// and projects it straight into the output. Small images go whole, several
// per pass, so the GEMMs keep enough rows. With fewer images than threads
// an image is cut between them by rows (bands that two threads take from
// opposite ends until they meet, so neither waits long for the other), or,
// when it is small (6x6), by expanded channels, each thread projecting its
// channels into a partial sum. Results equal the three layers run one after
// the other up to float rounding (the GEMMs see other row counts); the same
// thread count gives the same bits.
#pragma once

#include <cstdint>

namespace petal::cpu {

struct InvertedResidualBlock {
  std::int64_t batch = 0;
  std::int64_t in_h = 0, in_w = 0, in_c = 0;  // x [batch, in_h, in_w, in_c]
  std::int64_t expanded_c = 0;                // in_c when there is no expansion
  std::int64_t stride = 1;                    // the depthwise convolution's, both axes
  std::int64_t pad_top = 0, pad_left = 0;     // the depthwise convolution's
  std::int64_t out_h = 0, out_w = 0, out_c = 0;

  const float* expand_kernel = nullptr;  // [in_c, expanded_c], or null: no expansion
  const float* expand_scale = nullptr;   // [expanded_c]
  const float* expand_shift = nullptr;   // [expanded_c]
  bool expand_relu6 = true;
  const float* depthwise_kernel = nullptr;  // [3, 3, expanded_c], batch norm folded in
  const float* depthwise_bias = nullptr;    // [expanded_c]
  bool depthwise_relu6 = true;
  const float* project_kernel = nullptr;  // [expanded_c, out_c]
  const float* project_scale = nullptr;   // [out_c]
  const float* project_shift = nullptr;   // [out_c]
  bool residual = false;                  // y += x (needs out == in shape, stride 1)
};

// y [batch, out_h, out_w, out_c] (overwritten) from x, threaded over images
// (or over parts of each image when the batch has fewer images than
// threads); serial inside a parallel region.
void inverted_residual_forward(const float* x, float* y, const InvertedResidualBlock& block);

}  // namespace petal::cpu
