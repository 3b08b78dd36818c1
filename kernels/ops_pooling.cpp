// Padding, pooling and dropout-mask ops over NHWC (see ops_conv.hpp and, for
// the dispatch, ops_conv_common.hpp).
#include "core/error.hpp"
#include "kernels/cpu/conv/pooling.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"
#include "kernels/ops_conv.hpp"
#include "kernels/ops_conv_common.hpp"

namespace petal::ops {

using namespace detail;

// ---- zero padding ----

Tensor zero_pad2d(const Tensor& x, std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right) {
  const char* op = "zero_pad2d";
  check_nhwc(x, op);
  PETAL_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, ValueError, op,
              ": padding must not be negative, got ", top, ", ", bottom, ", ", left, ", ", right);
  if (on_cuda(op, {&x})) PETAL_CUDA_BRANCH(return cuda_ops::zero_pad2d(x, top, bottom, left, right));
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
  if (on_cuda(op, {&grad})) PETAL_CUDA_BRANCH(return cuda_ops::zero_pad2d_backward(grad, top, bottom, left, right));
  const Tensor src = grad.contiguous();
  const std::int64_t h = grad.size(1) - top - bottom, w = grad.size(2) - left - right;
  Tensor dx = Tensor::empty({grad.size(0), h, w, grad.size(3)}, grad.dtype());
  cpu::crop_padding_rows(src.raw_data(), dx.raw_data(), src.itemsize(), grad.size(0), h, w, grad.size(3),
                         {top, bottom, left, right});
  return dx;
}

// ---- pooling ----

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

// The CPU part of average pooling forward (y from x) over any geometry,
// global pooling's one window included.
void average_pool_forward_cpu(const Tensor& x, Tensor& y, const ConvGeometry& g) {
  run_fast_or_reference(
      x.dtype(), [&] { cpu::avg_pool_forward(x.data<float>(), y.data<float>(), g); },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_avg_pool_forward(x.data<T>(), y.data<T>(), g);
      });
}

void average_pool_backward_cpu(const Tensor& grad, Tensor& dx, const ConvGeometry& g) {
  run_fast_or_reference(
      grad.dtype(), [&] { cpu::avg_pool_backward(grad.data<float>(), dx.data<float>(), g); },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_avg_pool_backward(grad.data<T>(), dx.data<T>(), g);
      });
}

}  // namespace

Tensor global_average_pool2d(const Tensor& x_in) {
  const char* op = "global_average_pool2d";
  check_nhwc(x_in, op);
  if (on_cuda(op, {&x_in})) PETAL_CUDA_BRANCH(return cuda_ops::global_average_pool2d(x_in));
  const Tensor x = x_in.contiguous();
  const ConvGeometry g = cpu::global_pool_geometry(x.size(0), x.size(1), x.size(2), x.size(3));
  Tensor y = Tensor::empty({g.batch, g.in_c}, x.dtype());
  average_pool_forward_cpu(x, y, g);
  return y;
}

Tensor global_average_pool2d_backward(const Tensor& grad, const Shape& input_shape) {
  const char* op = "global_average_pool2d_backward";
  check_floating(op, grad, "gradient");
  PETAL_CHECK(input_shape.size() == 4 && grad.dim() == 2 && grad.size(0) == input_shape[0] &&
                  grad.size(1) == input_shape[3],
              ShapeError, op, ": gradient ", shape_str(grad.shape()), " does not match input ", shape_str(input_shape));
  for (std::int64_t d : input_shape)
    PETAL_CHECK(d > 0, ShapeError, op, ": input ", shape_str(input_shape), " has an empty dimension");
  if (on_cuda(op, {&grad})) PETAL_CUDA_BRANCH(return cuda_ops::global_average_pool2d_backward(grad, input_shape));
  const ConvGeometry g = cpu::global_pool_geometry(input_shape[0], input_shape[1], input_shape[2], input_shape[3]);
  const Tensor dy = grad.contiguous();
  Tensor dx = Tensor::empty(input_shape, dy.dtype());
  average_pool_backward_cpu(dy, dx, g);
  return dx;
}

Tensor average_pool2d(const Tensor& x_in, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window) {
  const char* op = "average_pool2d";
  check_nhwc(x_in, op);
  const ConvGeometry g = pool_geometry(x_in.shape(), pool_h, pool_w, window, op);
  if (on_cuda(op, {&x_in})) PETAL_CUDA_BRANCH(return cuda_ops::average_pool2d(x_in, g));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  average_pool_forward_cpu(x, y, g);
  return y;
}

Tensor average_pool2d_backward(const Tensor& grad_in, const Shape& input_shape, std::int64_t pool_h,
                               std::int64_t pool_w, const Conv2dWindow& window) {
  const char* op = "average_pool2d_backward";
  PETAL_CHECK(input_shape.size() == 4, ShapeError, op, ": input shape ", shape_str(input_shape), " is not 4-D");
  const ConvGeometry g = pool_geometry(input_shape, pool_h, pool_w, window, op);
  check_grad(grad_in, g, op);
  if (on_cuda(op, {&grad_in})) PETAL_CUDA_BRANCH(return cuda_ops::average_pool2d_backward(grad_in, g));
  const Tensor grad = grad_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype());
  average_pool_backward_cpu(grad, dx, g);
  return dx;
}

Tensor max_pool2d(const Tensor& x_in, std::int64_t pool_h, std::int64_t pool_w, const Conv2dWindow& window) {
  const char* op = "max_pool2d";
  check_nhwc(x_in, op);
  const ConvGeometry g = pool_geometry(x_in.shape(), pool_h, pool_w, window, op);
  if (on_cuda(op, {&x_in})) PETAL_CUDA_BRANCH(return cuda_ops::max_pool2d(x_in, g));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  run_fast_or_reference(
      x.dtype(), [&] { cpu::max_pool_forward(x.data<float>(), y.data<float>(), g); },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_max_pool_forward(x.data<T>(), y.data<T>(), g);
      });
  return y;
}

Tensor max_pool2d_backward(const Tensor& grad_in, const Tensor& x_in, std::int64_t pool_h, std::int64_t pool_w,
                           const Conv2dWindow& window) {
  const char* op = "max_pool2d_backward";
  check_nhwc(x_in, op);
  const ConvGeometry g = pool_geometry(x_in.shape(), pool_h, pool_w, window, op);
  check_grad(grad_in, g, op);
  check_same_dtype(op, x_in, grad_in, "gradient");
  if (on_cuda(op, {&grad_in, &x_in})) PETAL_CUDA_BRANCH(return cuda_ops::max_pool2d_backward(grad_in, x_in, g));
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  run_fast_or_reference(
      x.dtype(), [&] { cpu::max_pool_backward(grad.data<float>(), x.data<float>(), dx.data<float>(), g); },
      [&](auto tag) {
        using T = decltype(tag);
        cpu::reference_max_pool_backward(grad.data<T>(), x.data<T>(), dx.data<T>(), g);
      });
  return dx;
}

// ---- dropout ----

Tensor dropout_mask(const Shape& shape, double rate, Generator& gen, DType dtype) {
  PETAL_CHECK(rate >= 0.0 && rate < 1.0, ValueError, "dropout: rate must be in [0, 1), got ", rate);
  PETAL_CHECK(dtype == DType::Float32 || dtype == DType::Float64, DTypeError,
              "dropout: mask dtype must be float32 or float64, got ", dtype_name(dtype));
  Tensor mask = Tensor::empty(shape, dtype);
  const double keep = 1.0 / (1.0 - rate);
  kernels::dispatch_floating(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = mask.data<T>();
    for (std::int64_t i = 0; i < mask.numel(); ++i) p[i] = gen.uniform_double() < rate ? T(0) : T(keep);
  });
  return mask;
}

}  // namespace petal::ops
