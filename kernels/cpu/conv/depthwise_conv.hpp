// Threaded float32 depthwise convolution (multiplier 1) over the per-ISA
// kernels of depthwise_kernels.cpp: threads take output rows (forward,
// weight gradient) or input rows (input gradient); weight and bias gradients
// are summed per thread and added in thread order.
#pragma once

#include "kernels/cpu/conv/conv_geometry.hpp"

namespace petal::cpu {

// Whether the fast kernels handle this geometry: at most 16 taps per axis
// reading one input pixel (the strided input gradient gathers them). The
// kernels themselves take multiplier 1 only (in_c == out_c); the ops layer
// runs larger multipliers on them over channel-repeated inputs.
bool depthwise_fast_path(const ConvGeometry& g);

class ChannelStats;

// stats (may be null) receives the batch statistics of y, row by row as it is written.
void depthwise_forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
                       ChannelStats* stats = nullptr);
void depthwise_backward_input(const float* dy, const float* w, float* dx, const ConvGeometry& g);
// dw (and dbias when not null) overwritten.
void depthwise_backward_kernel(const float* dy, const float* x, float* dw, float* dbias, const ConvGeometry& g);

}  // namespace petal::cpu
