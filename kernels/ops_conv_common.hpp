// Internal to the convolution-family ops (ops_conv.cpp, ops_depthwise.cpp,
// ops_batch_norm.cpp, ops_pooling.cpp): their argument checks, the geometry
// they hand the kernels, and the one dispatch every op follows:
//
//   check arguments, build the geometry;
//   if (on_cuda(op, {operands})) PETAL_CUDA_BRANCH(return cuda_ops::...);
//   make the operands contiguous, allocate the result;
//   run_fast_or_reference(dtype, fast, reference): float32 runs the threaded
//     SIMD kernel of kernels/cpu/conv, float64 (gradient checks) the plain
//     reference loop.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "core/tensor.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/ops_common.hpp"
#include "kernels/ops_conv.hpp"
#include "kernels/portable/conv_geometry.hpp"
#include "kernels/portable/dispatch.hpp"

namespace petal::ops::detail {

using kernels::ConvGeometry;

// ---- the dispatch ----

// Whether the op's defined operands live on a CUDA device this build and
// machine can run (DeviceError when they are on different devices, or on a
// CUDA device that cannot run); false for CPU tensors.
inline bool on_cuda(const char* op, std::initializer_list<const Tensor*> operands) {
  return select_backend_of_defined(op, operands) == Backend::Cuda;
}

// The CPU half of the dispatch: fast() when the dtype is float32 and the
// fast kernel applies, else reference(tag) with a float{} or double{} tag
// (the reference loops exist for both, so float32 geometries the fast
// kernels do not cover run them too).
template <class Fast, class Reference>
void run_fast_or_reference(DType dtype, Fast&& fast, Reference&& reference, bool fast_applies = true) {
  if (dtype == DType::Float32 && fast_applies) {
    fast();
    return;
  }
  kernels::dispatch_floating(dtype, reference);
}

// t.contiguous(), or the undefined tensor for an absent optional operand.
inline Tensor contiguous_if_defined(const Tensor& t) { return t.defined() ? t.contiguous() : Tensor(); }

// A typed data pointer, null for an absent optional operand.
template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Clamps a contiguous float tensor to [0, 6] in place (the reference paths'
// ReLU6; the fast kernels fuse it).
template <class T>
void clamp_relu6_in_place(Tensor& y) {
  T* p = y.data<T>();
  for (std::int64_t i = 0; i < y.numel(); ++i) p[i] = std::min(std::max(p[i], T(0)), T(6));
}

// The CPU part of a kernel-gradient op (conv2d or depthwise): allocates dw
// [kernel_shape] and, when grad_bias is not null, the bias gradient [out_c];
// float32 runs fast(dw, db) (db null when not asked) where fast_applies, else
// reference(tag, dw) runs and the reference loop sums grad into the bias
// gradient. The bias gradient goes to *grad_bias.
template <class Fast, class Reference>
Tensor kernel_grad_cpu(const Tensor& grad, DType dtype, const Shape& kernel_shape, const ConvGeometry& g,
                       Tensor* grad_bias, Fast&& fast, Reference&& reference, bool fast_applies = true) {
  Tensor dw = Tensor::empty(kernel_shape, dtype);
  Tensor db = grad_bias ? Tensor::empty({g.out_c}, dtype) : Tensor();
  run_fast_or_reference(
      dtype, [&] { fast(dw, data_or_null<float>(db)); },
      [&](auto tag) {
        using T = decltype(tag);
        reference(tag, dw);
        if (grad_bias) cpu::reference_channel_sum(grad.data<T>(), g.output_pixels(), g.out_c, db.data<T>());
      },
      fast_applies);
  if (grad_bias) *grad_bias = db;
  return dw;
}

// ---- argument checks (each message names the op and the operand) ----

// x is a floating 4-D [N, H, W, C] tensor without an empty dimension.
void check_nhwc(const Tensor& x, const char* op, const char* what = "input");
// Checks a conv/depthwise kernel (and bias, may be undefined) against x;
// returns the output channels.
std::int64_t check_kernel(const Tensor& x, const Tensor& kernel, const Tensor& bias, bool depthwise, const char* op);
// The gradient of an op's output: floating, of the output's shape.
void check_grad(const Tensor& grad, const ConvGeometry& g, const char* op);
// A per-channel vector [channels] of x's dtype.
void check_channel_vector(const Tensor& v, const Tensor& x, std::int64_t channels, const char* op, const char* what);
// x [..., C] for batch norm: floating, not empty; returns C.
std::int64_t check_channels_last(const Tensor& x, const char* op);

// ---- geometry ----

// Geometry of an input of shape x under a kh x kw window (ValueError for a
// bad window, ShapeError when it does not fit); out_c is filled by the caller.
ConvGeometry make_geometry(const Shape& x, std::int64_t kh, std::int64_t kw, const Conv2dWindow& w, const char* op);
// The geometry of conv2d (depthwise = false) or depthwise_conv2d over x and
// kernel, after checking both (and bias, may be undefined).
ConvGeometry checked_conv_geometry(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                   const Conv2dWindow& window, bool depthwise, const char* op);
// The geometry of a kernel-gradient op (kernel shape given, x checked).
ConvGeometry kernel_grad_geometry(const Tensor& grad, const Tensor& x, const Shape& kernel_shape,
                                  const Conv2dWindow& window, bool depthwise, const char* op);
// The geometry of an input-gradient op (input shape given, kernel checked).
ConvGeometry input_grad_geometry(const Tensor& grad, const Tensor& kernel, const Shape& input_shape,
                                 const Conv2dWindow& window, bool depthwise, const char* op);
inline Shape output_shape(const ConvGeometry& g) { return {g.batch, g.out_h, g.out_w, g.out_c}; }

// ---- inference fusion ----

// The folded batch norm's scale and shift checked against the out_c output
// channels of kernel.
void check_folded_batch_norm(const FoldedBatchNorm& bn, const Tensor& kernel, std::int64_t out_c, const char* op);
// Kernel with its output channels scaled by bn.scale (the last axis of HWIO,
// the flattened [C * M] channels of a depthwise kernel: both are the
// innermost run) and the folded bias bias * scale + shift (bias may be undefined).
struct FoldedConv {
  Tensor kernel, bias;
};
FoldedConv fold_into_kernel(const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn, std::int64_t out_c,
                            const char* op);

}  // namespace petal::ops::detail
