// Argument checks, geometry and batch-norm folding shared by the
// convolution-family ops (see ops_conv_common.hpp).
#include "kernels/ops_conv_common.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/derived_cache.hpp"

namespace petal::ops::detail {

void check_nhwc(const Tensor& x, const char* op, const char* what) {
  check_floating(op, x, what);
  PETAL_CHECK(x.dim() == 4, ShapeError, op, ": ", what, " must be 4-D [N, H, W, C], got ", shape_str(x.shape()));
  for (std::int64_t d : x.shape())
    PETAL_CHECK(d > 0, ShapeError, op, ": ", what, " ", shape_str(x.shape()), " has an empty dimension");
}

namespace {

void check_window(const Conv2dWindow& w, const char* op) {
  PETAL_CHECK(w.stride_h > 0 && w.stride_w > 0, ValueError, op, ": strides must be positive, got ", w.stride_h, "x",
              w.stride_w);
  PETAL_CHECK(w.pad_top >= 0 && w.pad_bottom >= 0 && w.pad_left >= 0 && w.pad_right >= 0, ValueError, op,
              ": padding must not be negative");
}

// Output channels of a kernel of shape [kh, kw, Cin, Cout] or, depthwise, [kh, kw, C, M].
std::int64_t kernel_out_channels(const Shape& kernel_shape, bool depthwise) {
  return depthwise ? kernel_shape[2] * kernel_shape[3] : kernel_shape[3];
}

}  // namespace

ConvGeometry make_geometry(const Shape& x, std::int64_t kh, std::int64_t kw, const Conv2dWindow& w, const char* op) {
  check_window(w, op);
  ConvGeometry g;
  g.batch = x[0], g.in_h = x[1], g.in_w = x[2], g.in_c = x[3];
  g.kernel_h = kh, g.kernel_w = kw;
  g.stride_h = w.stride_h, g.stride_w = w.stride_w;
  g.pad_top = w.pad_top, g.pad_left = w.pad_left;
  const std::int64_t padded_h = x[1] + w.pad_top + w.pad_bottom, padded_w = x[2] + w.pad_left + w.pad_right;
  PETAL_CHECK(kh > 0 && kw > 0 && padded_h >= kh && padded_w >= kw, ShapeError, op, ": input ", shape_str(x),
              " (padded to ", padded_h, "x", padded_w, ") is smaller than the ", kh, "x", kw, " window");
  g.out_h = (padded_h - kh) / w.stride_h + 1;
  g.out_w = (padded_w - kw) / w.stride_w + 1;
  return g;
}

std::int64_t check_kernel(const Tensor& x, const Tensor& kernel, const Tensor& bias, bool depthwise, const char* op) {
  check_floating(op, kernel, "kernel");
  check_same_dtype(op, x, kernel, "kernel");
  PETAL_CHECK(kernel.dim() == 4, ShapeError, op, ": kernel must be 4-D [kh, kw, ",
              depthwise ? "C, multiplier" : "Cin, Cout", "], got ", shape_str(kernel.shape()));
  for (std::int64_t d : kernel.shape())
    PETAL_CHECK(d > 0, ShapeError, op, ": kernel ", shape_str(kernel.shape()), " has an empty dimension");
  PETAL_CHECK(kernel.size(2) == x.size(3), ShapeError, op, ": kernel ", shape_str(kernel.shape()), " expects ",
              kernel.size(2), " input channels but the input ", shape_str(x.shape()), " has ", x.size(3));
  const std::int64_t out_c = kernel_out_channels(kernel.shape(), depthwise);
  if (bias.defined()) {
    check_floating(op, bias, "bias");
    check_same_dtype(op, x, bias, "bias");
    PETAL_CHECK(bias.dim() == 1 && bias.size(0) == out_c, ShapeError, op, ": bias ", shape_str(bias.shape()),
                " does not match the ", out_c, " output channels");
  }
  return out_c;
}

void check_grad(const Tensor& grad, const ConvGeometry& g, const char* op) {
  check_floating(op, grad, "gradient");
  PETAL_CHECK(grad.shape() == output_shape(g), ShapeError, op, ": gradient ", shape_str(grad.shape()),
              " does not match the output shape ", shape_str(output_shape(g)));
}

void check_channel_vector(const Tensor& v, const Tensor& x, std::int64_t channels, const char* op, const char* what) {
  check_floating(op, v, what);
  check_same_dtype(op, x, v, what);
  PETAL_CHECK(v.dim() == 1 && v.size(0) == channels, ShapeError, op, ": ", what, " ", shape_str(v.shape()),
              " does not match the ", channels, " channels of ", shape_str(x.shape()));
}

std::int64_t check_channels_last(const Tensor& x, const char* op) {
  check_floating(op, x, "input");
  PETAL_CHECK(x.dim() >= 1 && x.numel() > 0, ShapeError, op, ": input ", shape_str(x.shape()),
              " must have a channel axis and no empty dimension");
  return x.size(-1);
}

ConvGeometry checked_conv_geometry(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                   const Conv2dWindow& window, bool depthwise, const char* op) {
  check_nhwc(x, op);
  const std::int64_t out_c = check_kernel(x, kernel, bias, depthwise, op);
  ConvGeometry g = make_geometry(x.shape(), kernel.size(0), kernel.size(1), window, op);
  g.out_c = out_c;
  return g;
}

ConvGeometry kernel_grad_geometry(const Tensor& grad, const Tensor& x, const Shape& kernel_shape,
                                  const Conv2dWindow& window, bool depthwise, const char* op) {
  check_nhwc(x, op);
  PETAL_CHECK(kernel_shape.size() == 4 && kernel_shape[2] == x.size(3), ShapeError, op, ": kernel shape ",
              shape_str(kernel_shape), " does not fit input ", shape_str(x.shape()));
  ConvGeometry g = make_geometry(x.shape(), kernel_shape[0], kernel_shape[1], window, op);
  g.out_c = kernel_out_channels(kernel_shape, depthwise);
  check_grad(grad, g, op);
  check_same_dtype(op, x, grad, "gradient");
  return g;
}

ConvGeometry input_grad_geometry(const Tensor& grad, const Tensor& kernel, const Shape& input_shape,
                                 const Conv2dWindow& window, bool depthwise, const char* op) {
  check_floating(op, kernel, "kernel");
  PETAL_CHECK(input_shape.size() == 4 && kernel.dim() == 4 && kernel.size(2) == input_shape[3], ShapeError, op,
              ": kernel ", shape_str(kernel.shape()), " does not fit input ", shape_str(input_shape));
  ConvGeometry g = make_geometry(input_shape, kernel.size(0), kernel.size(1), window, op);
  g.out_c = kernel_out_channels(kernel.shape(), depthwise);
  check_grad(grad, g, op);
  check_same_dtype(op, grad, kernel, "kernel");
  return g;
}

void check_folded_batch_norm(const FoldedBatchNorm& bn, const Tensor& kernel, std::int64_t out_c, const char* op) {
  check_channel_vector(bn.scale, kernel, out_c, op, "folded scale");
  check_channel_vector(bn.shift, kernel, out_c, op, "folded shift");
}

namespace {

FoldedConv fold_into_kernel_uncached(const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn,
                                     std::int64_t out_c) {
  const Tensor k = kernel.contiguous();
  if (k.dtype() == DType::Float32) {
    // Training refolds the kernel on every call, so this runs in float
    // with the channel as the inner index (no per-element modulo, no double
    // copies). The product of two floats is exact in double, so rounding it
    // once to float gives the same bits as the double path below.
    const Tensor scale_f = bn.scale.contiguous();
    Tensor w = Tensor::empty(k.shape(), DType::Float32);
    const float* src = k.data<const float>();
    const float* s = scale_f.data<const float>();
    float* dst = w.data<float>();
    const std::int64_t rows = k.numel() / out_c;
    parallel_for(0, rows, std::max<std::int64_t>(1, 16384 / out_c), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = 0; c < out_c; ++c) dst[r * out_c + c] = src[r * out_c + c] * s[c];
    });
    // bias * scale + shift in double, rounded once (as the double path).
    const Tensor shift_f = bn.shift.contiguous(), bias_f = bias.defined() ? bias.contiguous() : Tensor();
    Tensor folded_bias = Tensor::empty({out_c}, DType::Float32);
    const float* t = shift_f.data<const float>();
    const float* b0 = bias_f.defined() ? bias_f.data<const float>() : nullptr;
    float* fb = folded_bias.data<float>();
    for (std::int64_t c = 0; c < out_c; ++c)
      fb[c] = static_cast<float>((b0 ? static_cast<double>(b0[c]) : 0.0) * static_cast<double>(s[c]) +
                                 static_cast<double>(t[c]));
    return {w, folded_bias};
  }
  const std::vector<double> scale = bn.scale.to_vector<double>(), shift = bn.shift.to_vector<double>();
  std::vector<double> b =
      bias.defined() ? bias.to_vector<double>() : std::vector<double>(static_cast<std::size_t>(out_c), 0.0);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = b[i] * scale[i] + shift[i];
  std::vector<double> w = k.to_vector<double>();
  for (std::size_t i = 0; i < w.size(); ++i) w[i] *= scale[i % static_cast<std::size_t>(out_c)];
  return {from_vector(w, k.shape()).to(k.dtype()), from_vector(b).to(k.dtype())};
}

}  // namespace

FoldedConv fold_into_kernel(const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn, std::int64_t out_c,
                            const char* op) {
  check_folded_batch_norm(bn, kernel, out_c, op);
  // Inference refolds its depthwise kernels on every call: kept while the
  // kernel, bias and folded batch norm hold the same bytes (derived_cache.hpp;
  // the ops that call this only read the result).
  static DerivedCache<FoldedConv> cache;
  return cache.get(
      {&kernel, &bias, &bn.scale, &bn.shift}, static_cast<std::uint64_t>(out_c),
      [&] { return fold_into_kernel_uncached(kernel, bias, bn, out_c); });
}

}  // namespace petal::ops::detail
