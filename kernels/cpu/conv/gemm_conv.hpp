// Conv2D (HWIO kernels, NHWC activations), float32:
//   1x1 stride-1 unpadded: the activations already are the [pixels, Cin]
//     matrix, so the forward pass and the input gradient are plain sgemm
//     calls, no copy;
//   few input channels (Cin <= 4): the direct kernel of direct_conv_kernels;
//   otherwise im2col into a per-thread buffer of a block of output pixels
//     (never the whole batch) and one sgemm per block.
// Weight gradients (x^T dy, tiny M and N, huge K) use the packing-free
// outer-product kernel of pointwise_kernels.cpp on the activations or the
// im2col blocks. Bias and ReLU6 are applied to each output block while it is
// still in cache. Threads split the pixels; weight gradients are summed per
// thread and then added in thread order (deterministic for a thread count).
#pragma once

#include "kernels/cpu/conv/conv_geometry.hpp"

namespace petal::cpu {

class ChannelStats;

// y [pixels, Cout] = conv(x, w) + bias (bias may be null), clamped to [0, 6]
// when relu6. When stats is not null it receives the per-channel batch
// statistics of y, gathered block by block while y is written.
void conv2d_forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
                    ChannelStats* stats = nullptr);
// Whether conv2d_forward runs the direct kernel (few input channels) rather
// than a GEMM.
bool conv2d_runs_direct(const ConvGeometry& g);
// y = conv(x, w) * scale + shift per output channel, clamped to [0, 6] when
// relu6: an inference batch norm applied in the GEMM epilogue, so the kernel
// is not refolded (copied) on every call. Not for direct geometries.
void conv2d_forward_scaled(const float* x, const float* w, const float* scale, const float* shift, float* y,
                           const ConvGeometry& g, bool relu6);
// dx (overwritten) from dy.
void conv2d_backward_input(const float* dy, const float* w, float* dx, const ConvGeometry& g);
// dw (overwritten) and, when not null, dbias (overwritten) from dy and x.
void conv2d_backward_kernel(const float* dy, const float* x, float* dw, float* dbias, const ConvGeometry& g);

// out[c] = sum over rows of x[rows, channels] (deterministic, threaded).
void channel_sums(const float* x, std::int64_t rows, std::int64_t channels, float* out);

}  // namespace petal::cpu
