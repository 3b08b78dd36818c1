// Geometry shared by every raw-pointer convolution-family kernel, CPU and
// CUDA alike: NHWC activations, explicit padding (the ops layer turns
// "same"/"valid" into pad_top/pad_left and output sizes).
#pragma once

#include <cstdint>

namespace petal::kernels {

struct ConvGeometry {
  std::int64_t batch = 0;
  std::int64_t in_h = 0, in_w = 0, in_c = 0;     // input [batch, in_h, in_w, in_c]
  std::int64_t out_h = 0, out_w = 0, out_c = 0;  // output [batch, out_h, out_w, out_c]
  std::int64_t kernel_h = 0, kernel_w = 0;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_left = 0;  // bottom/right padding follows from the output size
  // Forward kernels that honour it (the CPU ones) write the output with
  // non-temporal stores: set for outputs far larger than the caches that
  // nothing reads back at once (see cpu::kStreamOutputThresholdBytes).
  bool stream_output = false;

  std::int64_t input_pixels() const { return batch * in_h * in_w; }
  std::int64_t output_pixels() const { return batch * out_h * out_w; }
  std::int64_t taps() const { return kernel_h * kernel_w; }
};

}  // namespace petal::kernels
