// Convolution-family ops: argument checks, then the CUDA kernels of
// kernels/cuda/conv for CUDA tensors, else the float32 kernels of
// kernels/cpu/conv or the float64 reference loops. See ops_conv.hpp.
#include "kernels/ops_conv.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/conv/batch_norm.hpp"
#include "kernels/ops.hpp"
#include "kernels/cpu/conv/channel_stats.hpp"
#include "kernels/cpu/conv/depthwise_conv.hpp"
#include "kernels/cpu/conv/gemm_conv.hpp"
#include "kernels/cpu/conv/pooling.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"
#include "kernels/ops_common.hpp"

namespace petal::ops {
namespace {

using cpu::ConvGeometry;
using detail::Backend;

bool is_double(const Tensor& t) { return t.dtype() == DType::Float64; }

void check_float(const Tensor& t, const char* op, const char* what) {
  t.check_defined(op);
  PETAL_CHECK(t.dtype() == DType::Float32 || t.dtype() == DType::Float64, DTypeError, op, ": ", what,
              " must be float32 or float64, got ", dtype_name(t.dtype()));
}

// The backend of an op's defined operands (an absent bias is undefined and
// has no device): DeviceError when they are on different devices, or on a
// CUDA device this build or machine cannot run.
Backend backend_of(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!first) first = t;
    PETAL_CHECK(t->device() == first->device(), DeviceError, op, ": tensors are on different devices (",
                first->device().str(), " and ", t->device().str(), "; shapes ", shape_str(first->shape()), " and ",
                shape_str(t->shape()), ")");
  }
  return first ? detail::select_backend(op, {first}) : Backend::Cpu;
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* what) {
  PETAL_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": ", what, " is ", dtype_name(b.dtype()), " but the input is ",
              dtype_name(a.dtype()));
}

void check_nhwc(const Tensor& x, const char* op, const char* what = "input") {
  check_float(x, op, what);
  PETAL_CHECK(x.dim() == 4, ShapeError, op, ": ", what, " must be 4-D [N, H, W, C], got ", shape_str(x.shape()));
  for (std::int64_t d : x.shape())
    PETAL_CHECK(d > 0, ShapeError, op, ": ", what, " ", shape_str(x.shape()), " has an empty dimension");
}

void check_window(const Conv2dWindow& w, const char* op) {
  PETAL_CHECK(w.stride_h > 0 && w.stride_w > 0, ValueError, op, ": strides must be positive, got ", w.stride_h, "x",
              w.stride_w);
  PETAL_CHECK(w.pad_top >= 0 && w.pad_bottom >= 0 && w.pad_left >= 0 && w.pad_right >= 0, ValueError, op,
              ": padding must not be negative");
}

// Geometry of x under a kh x kw window; out_c is filled by the caller.
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

Shape output_shape(const ConvGeometry& g) { return {g.batch, g.out_h, g.out_w, g.out_c}; }

template <class T> T* ptr(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

// Checks a conv/depthwise kernel against x; returns the output channels.
std::int64_t check_kernel(const Tensor& x, const Tensor& kernel, const Tensor& bias, bool depthwise, const char* op) {
  check_float(kernel, op, "kernel");
  check_same_dtype(x, kernel, op, "kernel");
  PETAL_CHECK(kernel.dim() == 4, ShapeError, op, ": kernel must be 4-D [kh, kw, ",
              depthwise ? "C, multiplier" : "Cin, Cout", "], got ", shape_str(kernel.shape()));
  for (std::int64_t d : kernel.shape())
    PETAL_CHECK(d > 0, ShapeError, op, ": kernel ", shape_str(kernel.shape()), " has an empty dimension");
  PETAL_CHECK(kernel.size(2) == x.size(3), ShapeError, op, ": kernel ", shape_str(kernel.shape()), " expects ",
              kernel.size(2), " input channels but the input ", shape_str(x.shape()), " has ", x.size(3));
  const std::int64_t out_c = depthwise ? kernel.size(2) * kernel.size(3) : kernel.size(3);
  if (bias.defined()) {
    check_float(bias, op, "bias");
    check_same_dtype(x, bias, op, "bias");
    PETAL_CHECK(bias.dim() == 1 && bias.size(0) == out_c, ShapeError, op, ": bias ", shape_str(bias.shape()),
                " does not match the ", out_c, " output channels");
  }
  return out_c;
}

void check_grad(const Tensor& grad, const ConvGeometry& g, const char* op) {
  check_float(grad, op, "gradient");
  PETAL_CHECK(grad.shape() == output_shape(g), ShapeError, op, ": gradient ", shape_str(grad.shape()),
              " does not match the output shape ", shape_str(output_shape(g)));
}

void check_channel_vector(const Tensor& v, const Tensor& x, std::int64_t channels, const char* op, const char* what) {
  check_float(v, op, what);
  check_same_dtype(x, v, op, what);
  PETAL_CHECK(v.dim() == 1 && v.size(0) == channels, ShapeError, op, ": ", what, " ", shape_str(v.shape()),
              " does not match the ", channels, " channels of ", shape_str(x.shape()));
}

// Rows and channels of x [..., C] for batch norm.
std::int64_t check_channels_last(const Tensor& x, const char* op) {
  check_float(x, op, "input");
  PETAL_CHECK(x.dim() >= 1 && x.numel() > 0, ShapeError, op, ": input ", shape_str(x.shape()),
              " must have a channel axis and no empty dimension");
  return x.size(-1);
}

}  // namespace

// ---- windows ----

std::int64_t conv_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, ConvPadding padding,
                              const char* op) {
  PETAL_CHECK(in > 0 && k > 0 && stride > 0, ShapeError, op, ": input size ", in, ", window ", k, " and stride ",
              stride, " must all be positive");
  if (padding == ConvPadding::Same) return (in + stride - 1) / stride;
  PETAL_CHECK(in >= k, ShapeError, op, ": input size ", in, " is smaller than the window ", k,
              " with \"valid\" padding");
  return (in - k) / stride + 1;
}

std::int64_t same_padding_before(std::int64_t in, std::int64_t k, std::int64_t stride) {
  const std::int64_t out = (in + stride - 1) / stride;
  return std::max<std::int64_t>((out - 1) * stride + k - in, 0) / 2;
}

Conv2dWindow conv2d_window(std::int64_t in_h, std::int64_t in_w, std::int64_t k_h, std::int64_t k_w,
                           std::int64_t stride_h, std::int64_t stride_w, ConvPadding padding, const char* op) {
  Conv2dWindow w;
  w.stride_h = stride_h, w.stride_w = stride_w;
  const std::int64_t out_h = conv_output_size(in_h, k_h, stride_h, padding, op);
  const std::int64_t out_w = conv_output_size(in_w, k_w, stride_w, padding, op);
  if (padding == ConvPadding::Same) {
    const std::int64_t total_h = std::max<std::int64_t>((out_h - 1) * stride_h + k_h - in_h, 0);
    const std::int64_t total_w = std::max<std::int64_t>((out_w - 1) * stride_w + k_w - in_w, 0);
    w.pad_top = total_h / 2, w.pad_bottom = total_h - total_h / 2;
    w.pad_left = total_w / 2, w.pad_right = total_w - total_w / 2;
  }
  return w;
}

// ---- Conv2D ----

Tensor conv2d(const Tensor& x_in, const Tensor& kernel_in, const Tensor& bias_in, const Conv2dWindow& window,
              bool relu6) {
  const char* op = "conv2d";
  check_nhwc(x_in, op);
  const std::int64_t out_c = check_kernel(x_in, kernel_in, bias_in, false, op);
  ConvGeometry g = make_geometry(x_in.shape(), kernel_in.size(0), kernel_in.size(1), window, op);
  g.out_c = out_c;
  if (backend_of(op, {&x_in, &kernel_in, &bias_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d(x_in, kernel_in, bias_in, g, relu6));
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  if (is_double(x)) {
    cpu::reference_conv2d_forward(x.data<double>(), kernel.data<double>(), ptr<double>(bias), y.data<double>(), g);
    if (relu6) {
      double* p = y.data<double>();
      for (std::int64_t i = 0; i < y.numel(); ++i) p[i] = std::min(std::max(p[i], 0.0), 6.0);
    }
  } else {
    cpu::conv2d_forward(x.data<float>(), kernel.data<float>(), ptr<float>(bias), y.data<float>(), g, relu6);
  }
  return y;
}

Tensor conv2d_backward_input(const Tensor& grad_in, const Tensor& kernel_in, const Shape& input_shape,
                             const Conv2dWindow& window) {
  const char* op = "conv2d_backward_input";
  check_float(kernel_in, op, "kernel");
  PETAL_CHECK(input_shape.size() == 4 && kernel_in.dim() == 4 && kernel_in.size(2) == input_shape[3], ShapeError, op,
              ": kernel ", shape_str(kernel_in.shape()), " does not fit input ", shape_str(input_shape));
  ConvGeometry g = make_geometry(input_shape, kernel_in.size(0), kernel_in.size(1), window, op);
  g.out_c = kernel_in.size(3);
  check_grad(grad_in, g, op);
  check_same_dtype(grad_in, kernel_in, op, "kernel");
  if (backend_of(op, {&grad_in, &kernel_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d_backward_input(grad_in, kernel_in, g));
  const Tensor grad = grad_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype());
  if (is_double(grad)) {
    cpu::reference_conv2d_backward_input(grad.data<double>(), kernel.data<double>(), dx.data<double>(), g);
  } else {
    cpu::conv2d_backward_input(grad.data<float>(), kernel.data<float>(), dx.data<float>(), g);
  }
  return dx;
}

Tensor conv2d_backward_kernel(const Tensor& grad_in, const Tensor& x_in, const Shape& kernel_shape,
                              const Conv2dWindow& window, Tensor* grad_bias) {
  const char* op = "conv2d_backward_kernel";
  check_nhwc(x_in, op);
  PETAL_CHECK(kernel_shape.size() == 4 && kernel_shape[2] == x_in.size(3), ShapeError, op, ": kernel shape ",
              shape_str(kernel_shape), " does not fit input ", shape_str(x_in.shape()));
  ConvGeometry g = make_geometry(x_in.shape(), kernel_shape[0], kernel_shape[1], window, op);
  g.out_c = kernel_shape[3];
  check_grad(grad_in, g, op);
  check_same_dtype(x_in, grad_in, op, "gradient");
  if (backend_of(op, {&grad_in, &x_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d_backward_kernel(grad_in, x_in, kernel_shape, g, grad_bias));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dw = Tensor::empty(kernel_shape, x.dtype());
  Tensor db = grad_bias ? Tensor::empty({g.out_c}, x.dtype()) : Tensor();
  if (is_double(x)) {
    cpu::reference_conv2d_backward_kernel(grad.data<double>(), x.data<double>(), dw.data<double>(), g);
    if (grad_bias) cpu::reference_channel_sum(grad.data<double>(), g.output_pixels(), g.out_c, db.data<double>());
  } else {
    cpu::conv2d_backward_kernel(grad.data<float>(), x.data<float>(), dw.data<float>(), ptr<float>(db), g);
  }
  if (grad_bias) *grad_bias = db;
  return dw;
}

// ---- DepthwiseConv2D ----

namespace {

// A depth multiplier M > 1 runs on the multiplier-1 kernels: output channel
// c * M + m reads input channel c, so the input with every channel repeated M
// times is a multiplier-1 problem over C * M channels, and the [kh, kw, C, M]
// kernel already is [kh, kw, C * M, 1] in memory.
bool has_multiplier(const ConvGeometry& g) { return g.out_c != g.in_c; }

ConvGeometry as_multiplier_one(ConvGeometry g) {
  g.in_c = g.out_c;
  return g;
}

// x [pixels, C] -> [pixels, C * M], each channel repeated M times.
Tensor repeat_channels(const Tensor& x, std::int64_t m) {
  Shape shape = x.shape();
  const std::int64_t c = shape.back();
  shape.back() = c * m;
  Tensor out = Tensor::empty(shape, DType::Float32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  const std::int64_t pixels = x.numel() / c;
  parallel_for(0, pixels, std::max<std::int64_t>(1, 16384 / (c * m)), [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p)
      for (std::int64_t ch = 0; ch < c; ++ch) std::fill_n(dst + (p * c + ch) * m, m, src[p * c + ch]);
  });
  return out;
}

// The reverse for gradients: dst [pixels, C] = sums of each group of M channels of src [pixels, C * M].
void sum_channel_groups(const float* src, float* dst, std::int64_t pixels, std::int64_t c, std::int64_t m) {
  parallel_for(0, pixels, std::max<std::int64_t>(1, 16384 / (c * m)), [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p)
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const float* group = src + (p * c + ch) * m;
        float sum = 0.0f;
        for (std::int64_t i = 0; i < m; ++i) sum += group[i];
        dst[p * c + ch] = sum;
      }
  });
}

}  // namespace


Tensor depthwise_conv2d(const Tensor& x_in, const Tensor& kernel_in, const Tensor& bias_in,
                        const Conv2dWindow& window, bool relu6) {
  const char* op = "depthwise_conv2d";
  check_nhwc(x_in, op);
  const std::int64_t out_c = check_kernel(x_in, kernel_in, bias_in, true, op);
  ConvGeometry g = make_geometry(x_in.shape(), kernel_in.size(0), kernel_in.size(1), window, op);
  g.out_c = out_c;
  if (backend_of(op, {&x_in, &kernel_in, &bias_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_conv2d(x_in, kernel_in, bias_in, g, relu6));
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  if (is_double(x) || !cpu::depthwise_fast_path(g)) {
    const auto run = [&](auto tag) {
      using T = decltype(tag);
      cpu::reference_depthwise_forward(x.data<T>(), kernel.data<T>(), ptr<T>(bias), y.data<T>(), g);
      if (relu6) {
        T* p = y.data<T>();
        for (std::int64_t i = 0; i < y.numel(); ++i) p[i] = std::min(std::max(p[i], T(0)), T(6));
      }
    };
    is_double(x) ? run(double{}) : run(float{});
  } else if (has_multiplier(g)) {
    const Tensor repeated = repeat_channels(x, g.out_c / g.in_c);
    cpu::depthwise_forward(repeated.data<float>(), kernel.data<float>(), ptr<float>(bias), y.data<float>(),
                           as_multiplier_one(g), relu6);
  } else {
    cpu::depthwise_forward(x.data<float>(), kernel.data<float>(), ptr<float>(bias), y.data<float>(), g, relu6);
  }
  return y;
}

Tensor depthwise_conv2d_backward_input(const Tensor& grad_in, const Tensor& kernel_in, const Shape& input_shape,
                                       const Conv2dWindow& window) {
  const char* op = "depthwise_conv2d_backward_input";
  check_float(kernel_in, op, "kernel");
  PETAL_CHECK(input_shape.size() == 4 && kernel_in.dim() == 4 && kernel_in.size(2) == input_shape[3], ShapeError, op,
              ": kernel ", shape_str(kernel_in.shape()), " does not fit input ", shape_str(input_shape));
  ConvGeometry g = make_geometry(input_shape, kernel_in.size(0), kernel_in.size(1), window, op);
  g.out_c = kernel_in.size(2) * kernel_in.size(3);
  check_grad(grad_in, g, op);
  check_same_dtype(grad_in, kernel_in, op, "kernel");
  if (backend_of(op, {&grad_in, &kernel_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_conv2d_backward_input(grad_in, kernel_in, g));
  const Tensor grad = grad_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype());
  if (is_double(grad)) {
    cpu::reference_depthwise_backward_input(grad.data<double>(), kernel.data<double>(), dx.data<double>(), g);
  } else if (!cpu::depthwise_fast_path(g)) {
    cpu::reference_depthwise_backward_input(grad.data<float>(), kernel.data<float>(), dx.data<float>(), g);
  } else if (has_multiplier(g)) {
    Tensor dx_repeated = Tensor::empty({g.batch, g.in_h, g.in_w, g.out_c}, DType::Float32);
    cpu::depthwise_backward_input(grad.data<float>(), kernel.data<float>(), dx_repeated.data<float>(),
                                  as_multiplier_one(g));
    sum_channel_groups(dx_repeated.data<float>(), dx.data<float>(), g.input_pixels(), g.in_c, g.out_c / g.in_c);
  } else {
    cpu::depthwise_backward_input(grad.data<float>(), kernel.data<float>(), dx.data<float>(), g);
  }
  return dx;
}

Tensor depthwise_conv2d_backward_kernel(const Tensor& grad_in, const Tensor& x_in, const Shape& kernel_shape,
                                        const Conv2dWindow& window, Tensor* grad_bias) {
  const char* op = "depthwise_conv2d_backward_kernel";
  check_nhwc(x_in, op);
  PETAL_CHECK(kernel_shape.size() == 4 && kernel_shape[2] == x_in.size(3), ShapeError, op, ": kernel shape ",
              shape_str(kernel_shape), " does not fit input ", shape_str(x_in.shape()));
  ConvGeometry g = make_geometry(x_in.shape(), kernel_shape[0], kernel_shape[1], window, op);
  g.out_c = kernel_shape[2] * kernel_shape[3];
  check_grad(grad_in, g, op);
  check_same_dtype(x_in, grad_in, op, "gradient");
  if (backend_of(op, {&grad_in, &x_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_conv2d_backward_kernel(grad_in, x_in, kernel_shape, g, grad_bias));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dw = Tensor::empty(kernel_shape, x.dtype());
  Tensor db = grad_bias ? Tensor::empty({g.out_c}, x.dtype()) : Tensor();
  if (!is_double(x) && cpu::depthwise_fast_path(g) && has_multiplier(g)) {
    const Tensor repeated = repeat_channels(x, g.out_c / g.in_c);
    cpu::depthwise_backward_kernel(grad.data<float>(), repeated.data<float>(), dw.data<float>(), ptr<float>(db),
                                   as_multiplier_one(g));
  } else if (!is_double(x) && cpu::depthwise_fast_path(g)) {
    cpu::depthwise_backward_kernel(grad.data<float>(), x.data<float>(), dw.data<float>(), ptr<float>(db), g);
  } else {
    const auto run = [&](auto tag) {
      using T = decltype(tag);
      cpu::reference_depthwise_backward_kernel(grad.data<T>(), x.data<T>(), dw.data<T>(), g);
      if (grad_bias) cpu::reference_channel_sum(grad.data<T>(), g.output_pixels(), g.out_c, db.data<T>());
    };
    is_double(x) ? run(double{}) : run(float{});
  }
  if (grad_bias) *grad_bias = db;
  return dw;
}

// ---- BatchNormalization ----

Tensor batch_norm_training(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double epsilon,
                           bool relu6, Tensor& mean, Tensor& biased_variance) {
  const char* op = "batch_norm";
  const std::int64_t c = check_channels_last(x_in, op);
  check_channel_vector(gamma_in, x_in, c, op, "gamma");
  check_channel_vector(beta_in, x_in, c, op, "beta");
  PETAL_CHECK(epsilon > 0.0, ValueError, op, ": epsilon must be positive, got ", epsilon);
  if (backend_of(op, {&x_in, &gamma_in, &beta_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::batch_norm_training(x_in, gamma_in, beta_in, epsilon, relu6, mean,
                                                           biased_variance));
  const Tensor x = x_in.contiguous(), gamma = gamma_in.contiguous(), beta = beta_in.contiguous();
  const std::int64_t rows = x.numel() / c;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  mean = Tensor::empty({c}, x.dtype());
  biased_variance = Tensor::empty({c}, x.dtype());
  if (is_double(x)) {
    cpu::reference_batch_norm_training(x.data<double>(), gamma.data<double>(), beta.data<double>(), rows, c, epsilon,
                                       relu6, y.data<double>(), mean.data<double>(), biased_variance.data<double>());
  } else {
    cpu::batch_norm_training_forward(x.data<float>(), rows, c, gamma.data<float>(), beta.data<float>(), epsilon,
                                     relu6, y.data<float>(), mean.data<float>(), biased_variance.data<float>());
  }
  return y;
}

BatchNormGrads batch_norm_backward(const Tensor& grad_in, const Tensor& x_in, const Tensor& gamma_in,
                                   const Tensor& beta_in, const Tensor& mean_in, const Tensor& var_in, double epsilon,
                                   bool relu6) {
  const char* op = "batch_norm_backward";
  const std::int64_t c = check_channels_last(x_in, op);
  check_float(grad_in, op, "gradient");
  check_same_dtype(x_in, grad_in, op, "gradient");
  PETAL_CHECK(grad_in.shape() == x_in.shape(), ShapeError, op, ": gradient ", shape_str(grad_in.shape()),
              " does not match the input ", shape_str(x_in.shape()));
  check_channel_vector(gamma_in, x_in, c, op, "gamma");
  check_channel_vector(beta_in, x_in, c, op, "beta");
  check_channel_vector(mean_in, x_in, c, op, "mean");
  check_channel_vector(var_in, x_in, c, op, "variance");
  if (backend_of(op, {&grad_in, &x_in, &gamma_in, &beta_in, &mean_in, &var_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(
        return cuda_ops::batch_norm_backward(grad_in, x_in, gamma_in, beta_in, mean_in, var_in, epsilon, relu6));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous(), gamma = gamma_in.contiguous(),
               beta = beta_in.contiguous(), mean = mean_in.contiguous(), var = var_in.contiguous();
  const std::int64_t rows = x.numel() / c;
  BatchNormGrads out{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({c}, x.dtype()),
                     Tensor::empty({c}, x.dtype())};
  if (is_double(x)) {
    cpu::reference_batch_norm_backward(grad.data<double>(), x.data<double>(), gamma.data<double>(), beta.data<double>(),
                                       mean.data<double>(), var.data<double>(), rows, c, epsilon, relu6,
                                       out.x.data<double>(), out.gamma.data<double>(), out.beta.data<double>());
  } else {
    cpu::batch_norm_backward(grad.data<float>(), x.data<float>(), rows, c, gamma.data<float>(), beta.data<float>(),
                             mean.data<float>(), var.data<float>(), epsilon, relu6, out.x.data<float>(),
                             out.gamma.data<float>(), out.beta.data<float>());
  }
  return out;
}

FoldedBatchNorm fold_batch_norm(const Tensor& gamma_in, const Tensor& beta_in, const Tensor& mean_in,
                                const Tensor& var_in, double epsilon) {
  const char* op = "fold_batch_norm";
  check_float(gamma_in, op, "gamma");
  PETAL_CHECK(gamma_in.dim() == 1, ShapeError, op, ": gamma must be 1-D, got ", shape_str(gamma_in.shape()));
  const std::int64_t c = gamma_in.size(0);
  check_channel_vector(beta_in, gamma_in, c, op, "beta");
  check_channel_vector(mean_in, gamma_in, c, op, "moving_mean");
  check_channel_vector(var_in, gamma_in, c, op, "moving_variance");
  if (backend_of(op, {&gamma_in, &beta_in, &mean_in, &var_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::fold_batch_norm(gamma_in, beta_in, mean_in, var_in, epsilon));
  const std::vector<double> gamma = gamma_in.to_vector<double>(), beta = beta_in.to_vector<double>(),
                            mean = mean_in.to_vector<double>(), var = var_in.to_vector<double>();
  std::vector<double> scale(static_cast<std::size_t>(c)), shift(static_cast<std::size_t>(c));
  for (std::size_t i = 0; i < static_cast<std::size_t>(c); ++i) {
    scale[i] = gamma[i] / std::sqrt(var[i] + epsilon);
    shift[i] = beta[i] - mean[i] * scale[i];
  }
  return {from_vector(scale).to(gamma_in.dtype()), from_vector(shift).to(gamma_in.dtype())};
}

Tensor channel_affine(const Tensor& x_in, const Tensor& scale_in, const Tensor& shift_in, bool relu6) {
  const char* op = "channel_affine";
  const std::int64_t c = check_channels_last(x_in, op);
  check_channel_vector(scale_in, x_in, c, op, "scale");
  check_channel_vector(shift_in, x_in, c, op, "shift");
  if (backend_of(op, {&x_in, &scale_in, &shift_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::channel_affine(x_in, scale_in, shift_in, relu6));
  const Tensor x = x_in.contiguous(), scale = scale_in.contiguous(), shift = shift_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const std::int64_t rows = x.numel() / c;
  if (is_double(x)) {
    const double *px = x.data<double>(), *ps = scale.data<double>(), *pt = shift.data<double>();
    double* py = y.data<double>();
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < c; ++j) {
        const double v = px[r * c + j] * ps[j] + pt[j];
        py[r * c + j] = relu6 ? std::min(std::max(v, 0.0), 6.0) : v;
      }
  } else {
    cpu::channel_affine(x.data<float>(), rows, c, scale.data<float>(), shift.data<float>(), relu6, y.data<float>());
  }
  return y;
}

Tensor channel_affine_backward(const Tensor& grad_in, const Tensor& y_in, const Tensor& scale_in, bool relu6) {
  const char* op = "channel_affine_backward";
  const std::int64_t c = check_channels_last(y_in, op);
  PETAL_CHECK(grad_in.shape() == y_in.shape(), ShapeError, op, ": gradient ", shape_str(grad_in.shape()),
              " does not match the output ", shape_str(y_in.shape()));
  check_channel_vector(scale_in, y_in, c, op, "scale");
  // Without ReLU6 it is one multiplication; elsewhere than float32 on the
  // CPU the two ops compose it.
  if (!relu6 || is_double(y_in) || backend_of(op, {&grad_in, &y_in, &scale_in}) == Backend::Cuda)
    return mul(relu6 ? relu6_backward(grad_in, y_in) : grad_in, scale_in);
  const Tensor grad = grad_in.contiguous(), y = y_in.contiguous(), scale = scale_in.contiguous();
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  cpu::channel_scale_backward(grad.data<float>(), y.data<float>(), y.numel() / c, c, scale.data<float>(), relu6,
                              dx.data<float>());
  return dx;
}

void update_moving_statistics(Tensor& moving_mean, Tensor& moving_variance, const Tensor& batch_mean,
                              const Tensor& batch_biased_variance, std::int64_t count, double momentum) {
  const char* op = "batch_norm (moving statistics)";
  check_float(moving_mean, op, "moving_mean");
  check_float(moving_variance, op, "moving_variance");
  const std::int64_t c = batch_mean.numel();
  PETAL_CHECK(moving_mean.numel() == c && moving_variance.numel() == c && batch_biased_variance.numel() == c,
              ShapeError, op, ": moving_mean ", shape_str(moving_mean.shape()), " and moving_variance ",
              shape_str(moving_variance.shape()), " must have ", c, " elements");
  PETAL_CHECK(moving_mean.is_contiguous() && moving_variance.is_contiguous(), ValueError, op,
              ": moving statistics must be contiguous tensors (they are updated in place)");
  if (backend_of(op, {&moving_mean, &moving_variance}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::update_moving_statistics(moving_mean, moving_variance, batch_mean,
                                                                batch_biased_variance, count, momentum));
  const std::vector<double> mean = batch_mean.to_vector<double>(), var = batch_biased_variance.to_vector<double>();
  const double unbias = count > 1 ? double(count) / double(count - 1) : 1.0;
  auto update = [&](Tensor& t, const std::vector<double>& batch, double factor) {
    dispatch_dtype(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>) {
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < c; ++i)
          p[i] = T(double(p[i]) * momentum + batch[static_cast<std::size_t>(i)] * factor * (1.0 - momentum));
      }
    });
  };
  update(moving_mean, mean, 1.0);
  update(moving_variance, var, unbias);
}

// ---- inference fusion ----

namespace {

// Kernel with its output channels scaled (the last axis of HWIO, the
// flattened [C * M] channels of a depthwise kernel: both are the innermost
// run) and the folded bias.
struct FoldedConv {
  Tensor kernel, bias;
};
FoldedConv fold_into_kernel(const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn, std::int64_t out_c,
                            const char* op) {
  check_channel_vector(bn.scale, kernel, out_c, op, "folded scale");
  check_channel_vector(bn.shift, kernel, out_c, op, "folded shift");
  const Tensor k = kernel.contiguous();
  const std::vector<double> scale = bn.scale.to_vector<double>(), shift = bn.shift.to_vector<double>();
  std::vector<double> b = bias.defined() ? bias.to_vector<double>() : std::vector<double>(static_cast<std::size_t>(out_c), 0.0);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = b[i] * scale[i] + shift[i];
  if (k.dtype() == DType::Float32) {
    // The kernel is refolded on every inference call, so this runs in float
    // with the channel as the inner index (no per-element modulo, no double
    // copies). The product of two floats is exact in double, so rounding it
    // once to float gives the same bits as the double path below.
    const Tensor scale_f = bn.scale.contiguous();
    Tensor w = Tensor::empty(k.shape(), DType::Float32);
    const float* src = k.data<float>();
    const float* s = scale_f.data<float>();
    float* dst = w.data<float>();
    const std::int64_t rows = k.numel() / out_c;
    parallel_for(0, rows, std::max<std::int64_t>(1, 16384 / out_c), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = 0; c < out_c; ++c) dst[r * out_c + c] = src[r * out_c + c] * s[c];
    });
    return {w, from_vector(b).to(k.dtype())};
  }
  std::vector<double> w = k.to_vector<double>();
  for (std::size_t i = 0; i < w.size(); ++i) w[i] *= scale[i % static_cast<std::size_t>(out_c)];
  return {from_vector(w, k.shape()).to(k.dtype()), from_vector(b).to(k.dtype())};
}

}  // namespace

Tensor conv2d_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias, const FoldedBatchNorm& bn,
                                 const Conv2dWindow& window, bool relu6) {
  const char* op = "conv2d_bn_relu6_inference";
  check_nhwc(x, op);
  const std::int64_t out_c = check_kernel(x, kernel, bias, false, op);
  ConvGeometry g = make_geometry(x.shape(), kernel.size(0), kernel.size(1), window, op);
  g.out_c = out_c;
  if (backend_of(op, {&x, &kernel, &bias, &bn.scale, &bn.shift}) == Backend::Cuda) {
    check_channel_vector(bn.scale, kernel, out_c, op, "folded scale");
    check_channel_vector(bn.shift, kernel, out_c, op, "folded shift");
    PETAL_CUDA_BRANCH(return cuda_ops::conv2d_bn_relu6_inference(x, kernel, bias, bn, g, relu6));
  }
  if (x.dtype() == DType::Float32 && !cpu::conv2d_runs_direct(g)) {
    // The GEMM paths scale their output in the epilogue: folding the scale
    // into the kernel instead would copy the whole kernel on every call,
    // which at batch 1 costs as much as the convolution.
    check_channel_vector(bn.scale, kernel, out_c, op, "folded scale");
    check_channel_vector(bn.shift, kernel, out_c, op, "folded shift");
    const Tensor scale = bn.scale.contiguous();
    Tensor shift = bn.shift.contiguous();
    if (bias.defined()) shift = add(mul(bias, scale), shift);
    const Tensor xc = x.contiguous(), kc = kernel.contiguous();
    Tensor y = Tensor::empty(output_shape(g), DType::Float32);
    cpu::conv2d_forward_scaled(xc.data<float>(), kc.data<float>(), scale.data<float>(), shift.data<float>(),
                               y.data<float>(), g, relu6);
    return y;
  }
  const FoldedConv folded = fold_into_kernel(kernel, bias, bn, out_c, op);
  return conv2d(x, folded.kernel, folded.bias, window, relu6);
}

Tensor depthwise_bn_relu6_inference(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                    const FoldedBatchNorm& bn, const Conv2dWindow& window, bool relu6) {
  const char* op = "depthwise_bn_relu6_inference";
  check_nhwc(x, op);
  const std::int64_t out_c = check_kernel(x, kernel, bias, true, op);
  if (backend_of(op, {&x, &kernel, &bias, &bn.scale, &bn.shift}) == Backend::Cuda) {
    check_channel_vector(bn.scale, kernel, out_c, op, "folded scale");
    check_channel_vector(bn.shift, kernel, out_c, op, "folded shift");
    [[maybe_unused]] ConvGeometry g = make_geometry(x.shape(), kernel.size(0), kernel.size(1), window, op);
    g.out_c = out_c;
    PETAL_CUDA_BRANCH(return cuda_ops::depthwise_bn_relu6_inference(x, kernel, bias, bn, g, relu6));
  }
  const FoldedConv folded = fold_into_kernel(kernel, bias, bn, out_c, op);
  return depthwise_conv2d(x, folded.kernel, folded.bias, window, relu6);
}

// ---- training fusion ----

namespace {

ops::ConvBatchNormResult conv_batch_norm_training(const Tensor& x_in, const Tensor& kernel_in,
                                                  const Conv2dWindow& window, const Tensor& gamma_in,
                                                  const Tensor& beta_in, double epsilon, bool relu6, bool depthwise,
                                                  const char* op) {
  check_nhwc(x_in, op);
  const std::int64_t out_c = check_kernel(x_in, kernel_in, Tensor(), depthwise, op);
  ConvGeometry g = make_geometry(x_in.shape(), kernel_in.size(0), kernel_in.size(1), window, op);
  g.out_c = out_c;
  const Tensor probe = Tensor::empty({1, 1, 1, out_c}, x_in.dtype());  // checks gamma/beta against out_c
  check_channel_vector(gamma_in, probe, out_c, op, "gamma");
  check_channel_vector(beta_in, probe, out_c, op, "beta");
  PETAL_CHECK(epsilon > 0.0, ValueError, op, ": epsilon must be positive, got ", epsilon);
  if (backend_of(op, {&x_in, &kernel_in, &gamma_in, &beta_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(
        return cuda_ops::conv_batch_norm_training(x_in, kernel_in, g, gamma_in, beta_in, epsilon, relu6, depthwise));
  ConvBatchNormResult r;
  const bool fast = !is_double(x_in) && (!depthwise || (cpu::depthwise_fast_path(g) && g.in_c == g.out_c));
  if (!fast) {
    r.conv_out = depthwise ? depthwise_conv2d(x_in, kernel_in, Tensor(), window) : conv2d(x_in, kernel_in, Tensor(), window);
    r.y = batch_norm_training(r.conv_out, gamma_in, beta_in, epsilon, relu6, r.mean, r.biased_variance);
    return r;
  }
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous(), gamma = gamma_in.contiguous(),
               beta = beta_in.contiguous();
  r.conv_out = Tensor::empty(output_shape(g), DType::Float32);
  cpu::ChannelStats stats(out_c);
  if (depthwise) {
    cpu::depthwise_forward(x.data<float>(), kernel.data<float>(), nullptr, r.conv_out.data<float>(), g, false, &stats);
  } else {
    cpu::conv2d_forward(x.data<float>(), kernel.data<float>(), nullptr, r.conv_out.data<float>(), g, false, &stats);
  }
  r.mean = Tensor::empty({out_c}, DType::Float32);
  r.biased_variance = Tensor::empty({out_c}, DType::Float32);
  stats.finish(g.output_pixels(), r.mean.data<float>(), r.biased_variance.data<float>());
  r.y = Tensor::empty(output_shape(g), DType::Float32);
  cpu::batch_norm_apply(r.conv_out.data<float>(), g.output_pixels(), out_c, gamma.data<float>(), beta.data<float>(),
                        r.mean.data<float>(), r.biased_variance.data<float>(), epsilon, relu6, r.y.data<float>());
  return r;
}

}  // namespace

ConvBatchNormResult conv2d_batch_norm_training(const Tensor& x, const Tensor& kernel, const Conv2dWindow& window,
                                               const Tensor& gamma, const Tensor& beta, double epsilon, bool relu6) {
  return conv_batch_norm_training(x, kernel, window, gamma, beta, epsilon, relu6, false, "conv2d_batch_norm_training");
}

ConvBatchNormResult depthwise_conv2d_batch_norm_training(const Tensor& x, const Tensor& kernel,
                                                         const Conv2dWindow& window, const Tensor& gamma,
                                                         const Tensor& beta, double epsilon, bool relu6) {
  return conv_batch_norm_training(x, kernel, window, gamma, beta, epsilon, relu6, true,
                                  "depthwise_conv2d_batch_norm_training");
}

// ---- padding and pooling ----

Tensor zero_pad2d(const Tensor& x, std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right) {
  const char* op = "zero_pad2d";
  check_nhwc(x, op);
  PETAL_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, ValueError, op,
              ": padding must not be negative, got ", top, ", ", bottom, ", ", left, ", ", right);
  if (backend_of(op, {&x}) == Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::zero_pad2d(x, top, bottom, left, right));
  const Tensor src = x.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1) + top + bottom, x.size(2) + left + right, x.size(3)}, x.dtype());
  cpu::zero_pad_rows(src.raw_data(), y.raw_data(), src.itemsize(), x.size(0), x.size(1), x.size(2), x.size(3),
                     {top, bottom, left, right});
  return y;
}

Tensor zero_pad2d_backward(const Tensor& grad, std::int64_t top, std::int64_t bottom, std::int64_t left,
                           std::int64_t right) {
  const char* op = "zero_pad2d_backward";
  check_nhwc(grad, op, "gradient");
  PETAL_CHECK(grad.size(1) > top + bottom && grad.size(2) > left + right, ShapeError, op, ": gradient ",
              shape_str(grad.shape()), " is smaller than the padding");
  if (backend_of(op, {&grad}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::zero_pad2d_backward(grad, top, bottom, left, right));
  const Tensor src = grad.contiguous();
  const std::int64_t h = grad.size(1) - top - bottom, w = grad.size(2) - left - right;
  Tensor dx = Tensor::empty({grad.size(0), h, w, grad.size(3)}, grad.dtype());
  cpu::crop_padding_rows(src.raw_data(), dx.raw_data(), src.itemsize(), grad.size(0), h, w, grad.size(3),
                         {top, bottom, left, right});
  return dx;
}

Tensor global_average_pool2d(const Tensor& x_in) {
  const char* op = "global_average_pool2d";
  check_nhwc(x_in, op);
  if (backend_of(op, {&x_in}) == Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::global_average_pool2d(x_in));
  const Tensor x = x_in.contiguous();
  const cpu::ConvGeometry g = cpu::global_pool_geometry(x.size(0), x.size(1), x.size(2), x.size(3));
  Tensor y = Tensor::empty({g.batch, g.in_c}, x.dtype());
  if (is_double(x)) {
    cpu::reference_avg_pool_forward(x.data<double>(), y.data<double>(), g);
  } else {
    cpu::avg_pool_forward(x.data<float>(), y.data<float>(), g);
  }
  return y;
}

Tensor global_average_pool2d_backward(const Tensor& grad, const Shape& input_shape) {
  const char* op = "global_average_pool2d_backward";
  check_float(grad, op, "gradient");
  PETAL_CHECK(input_shape.size() == 4 && grad.dim() == 2 && grad.size(0) == input_shape[0] &&
                  grad.size(1) == input_shape[3],
              ShapeError, op, ": gradient ", shape_str(grad.shape()), " does not match input ", shape_str(input_shape));
  for (std::int64_t d : input_shape)
    PETAL_CHECK(d > 0, ShapeError, op, ": input ", shape_str(input_shape), " has an empty dimension");
  if (backend_of(op, {&grad}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::global_average_pool2d_backward(grad, input_shape));
  const cpu::ConvGeometry g = cpu::global_pool_geometry(input_shape[0], input_shape[1], input_shape[2], input_shape[3]);
  const Tensor dy = grad.contiguous();
  Tensor dx = Tensor::empty(input_shape, dy.dtype());
  if (is_double(dy)) {
    cpu::reference_avg_pool_backward(dy.data<double>(), dx.data<double>(), g);
  } else {
    cpu::avg_pool_backward(dy.data<float>(), dx.data<float>(), g);
  }
  return dx;
}

namespace {

ConvGeometry pool_geometry(const Shape& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window,
                           const char* op) {
  ConvGeometry g = make_geometry(x, pool_h, pool_w, window, op);
  // Then every window holds at least one input element (TensorFlow's "same"
  // padding is at most pool - 1).
  PETAL_CHECK(window.pad_top < pool_h && window.pad_bottom < pool_h && window.pad_left < pool_w &&
                  window.pad_right < pool_w,
              ValueError, op, ": padding ", window.pad_top, ", ", window.pad_bottom, ", ", window.pad_left, ", ",
              window.pad_right, " (top, bottom, left, right) must be smaller than the ", pool_h, "x", pool_w,
              " pool");
  g.out_c = g.in_c;
  return g;
}

template <class Fn>
void dispatch_float(const Tensor& t, Fn&& fn) {
  if (is_double(t)) {
    fn(double{});
  } else {
    fn(float{});
  }
}

}  // namespace

Tensor average_pool2d(const Tensor& x_in, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window) {
  const char* op = "average_pool2d";
  check_nhwc(x_in, op);
  const ConvGeometry g = pool_geometry(x_in.shape(), pool_h, pool_w, window, op);
  if (backend_of(op, {&x_in}) == Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::average_pool2d(x_in, g));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  dispatch_float(x, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>) {
      cpu::avg_pool_forward(x.data<float>(), y.data<float>(), g);
    } else {
      cpu::reference_avg_pool_forward(x.data<T>(), y.data<T>(), g);
    }
  });
  return y;
}

Tensor average_pool2d_backward(const Tensor& grad_in, const Shape& input_shape, std::int64_t pool_h,
                               std::int64_t pool_w, const Conv2dWindow& window) {
  const char* op = "average_pool2d_backward";
  PETAL_CHECK(input_shape.size() == 4, ShapeError, op, ": input shape ", shape_str(input_shape), " is not 4-D");
  const ConvGeometry g = pool_geometry(input_shape, pool_h, pool_w, window, op);
  check_grad(grad_in, g, op);
  if (backend_of(op, {&grad_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::average_pool2d_backward(grad_in, g));
  const Tensor grad = grad_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype());
  dispatch_float(grad, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>) {
      cpu::avg_pool_backward(grad.data<float>(), dx.data<float>(), g);
    } else {
      cpu::reference_avg_pool_backward(grad.data<T>(), dx.data<T>(), g);
    }
  });
  return dx;
}

Tensor max_pool2d(const Tensor& x_in, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window) {
  const char* op = "max_pool2d";
  check_nhwc(x_in, op);
  const ConvGeometry g = pool_geometry(x_in.shape(), pool_h, pool_w, window, op);
  if (backend_of(op, {&x_in}) == Backend::Cuda) PETAL_CUDA_BRANCH(return cuda_ops::max_pool2d(x_in, g));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  dispatch_float(x, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>) {
      cpu::max_pool_forward(x.data<float>(), y.data<float>(), g);
    } else {
      cpu::reference_max_pool_forward(x.data<T>(), y.data<T>(), g);
    }
  });
  return y;
}

Tensor max_pool2d_backward(const Tensor& grad_in, const Tensor& x_in, std::int64_t pool_h, std::int64_t pool_w,
                           const Conv2dWindow& window) {
  const char* op = "max_pool2d_backward";
  check_nhwc(x_in, op);
  const ConvGeometry g = pool_geometry(x_in.shape(), pool_h, pool_w, window, op);
  check_grad(grad_in, g, op);
  check_same_dtype(x_in, grad_in, op, "gradient");
  if (backend_of(op, {&grad_in, &x_in}) == Backend::Cuda)
    PETAL_CUDA_BRANCH(return cuda_ops::max_pool2d_backward(grad_in, x_in, g));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>) {
      cpu::max_pool_backward(grad.data<float>(), x.data<float>(), dx.data<float>(), g);
    } else {
      cpu::reference_max_pool_backward(grad.data<T>(), x.data<T>(), dx.data<T>(), g);
    }
  });
  return dx;
}

Tensor dropout_mask(const Shape& shape, double rate, Generator& gen, DType dtype) {
  PETAL_CHECK(rate >= 0.0 && rate < 1.0, ValueError, "dropout: rate must be in [0, 1), got ", rate);
  PETAL_CHECK(dtype == DType::Float32 || dtype == DType::Float64, DTypeError,
              "dropout: mask dtype must be float32 or float64, got ", dtype_name(dtype));
  Tensor mask = Tensor::empty(shape, dtype);
  const double keep = 1.0 / (1.0 - rate);
  dispatch_float(mask, [&](auto tag) {
    using T = decltype(tag);
    T* p = mask.data<T>();
    for (std::int64_t i = 0; i < mask.numel(); ++i) p[i] = gen.uniform_double() < rate ? T(0) : T(keep);
  });
  return mask;
}

}  // namespace petal::ops
