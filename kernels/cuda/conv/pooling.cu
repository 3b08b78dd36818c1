// Padding and pooling on CUDA: one thread per output
// element (forward) or input element (gradients, gathered over the windows
// containing it, so no atomics), channels innermost. TensorFlow semantics:
// see pool_body.hpp.
#include "kernels/cuda/conv/conv_launch.cuh"
#include "kernels/cuda/conv/pool_body.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"

namespace petal::cuda_conv {

namespace body = cuda_body;

// Every pad/crop/pool body is a map from an output index, computed in 32-bit
// integers when the tensors are small enough (as in conv2d.cu). Padding
// copies bits, so it runs on unsigned integers of the element's size.
inline bool fits_32bit(const Shape& a, const Shape& b) {
  return shape_numel(a) < (std::int64_t{1} << 31) && shape_numel(b) < (std::int64_t{1} << 31);
}

template <class I, class E>
void pad(const E* x, E* y, Shape in, Shape out, I top, I left, const OpName& name) {
  const I in_h = I(in[1]), in_w = I(in[2]), c = I(in[3]), out_h = I(out[1]), out_w = I(out[2]);
  for_each_index(
      shape_numel(out),
      [=] __device__(std::int64_t i) {
        const I o = I(i);
        const I src = body::zero_pad_source(in_h, in_w, c, out_h, out_w, top, left, o);
        y[o] = src < 0 ? E{} : x[src];
      },
      name, "zero padding");
}

template <class I, class E>
void crop(const E* grad, E* dx, Shape padded, Shape out, I top, I left, const OpName& name) {
  const I h = I(out[1]), w = I(out[2]), c = I(out[3]), padded_h = I(padded[1]), padded_w = I(padded[2]);
  for_each_index(
      shape_numel(out),
      [=] __device__(std::int64_t i) { dx[i] = grad[body::crop_source(h, w, c, padded_h, padded_w, top, left, I(i))]; },
      name, "crop");
}

// Runs fn with an unsigned integer type of the dtype's size (padding copies bits).
template <class Fn>
void dispatch_bits(std::size_t itemsize, Fn&& fn) {
  switch (itemsize) {
    case 1: return fn(std::uint8_t{});
    case 2: return fn(std::uint16_t{});
    case 4: return fn(std::uint32_t{});
    default: return fn(std::uint64_t{});
  }
}

template <class T>
void global_average(const T* x, T* y, std::int64_t pixels, std::int64_t c, std::int64_t outputs, const OpName& name) {
  for_each_index(
      outputs, [=] __device__(std::int64_t o) { y[o] = body::global_average_element(x, pixels, c, o); }, name,
      "global average");
}

template <class T>
void global_average_backward(const T* dy, T* dx, std::int64_t pixels, std::int64_t c, std::int64_t n,
                             const OpName& name) {
  for_each_index(
      n,
      [=] __device__(std::int64_t i) { dx[i] = dy[(i / (pixels * c)) * c + i % c] / T(pixels); }, name,
      "global average gradient");
}

template <class T, class G>
void launch_avg_pool(const T* x, T* y, const G& g, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  for_each_index(
      total, [=] __device__(std::int64_t i) { y[i] = body::avg_pool_output_element(x, g, I(i)); }, name,
      "average pool");
}

template <class T, class G>
void launch_avg_pool_backward(const T* dy, T* dx, const G& g, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  for_each_index(
      total, [=] __device__(std::int64_t i) { dx[i] = body::avg_pool_input_grad_element(dy, g, I(i)); }, name,
      "average pool gradient");
}

template <class T, class G>
void launch_max_pool(const T* x, T* y, const G& g, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  for_each_index(
      total, [=] __device__(std::int64_t i) { y[i] = body::max_pool_output_element(x, g, I(i)); }, name, "max pool");
}

template <class T, class G>
void launch_max_pool_backward(const T* dy, const T* x, T* dx, const G& g, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  for_each_index(
      total, [=] __device__(std::int64_t i) { dx[i] = body::max_pool_input_grad_element(dy, x, g, I(i)); }, name,
      "max pool gradient");
}

template <class T>
void avg_pool(const T* x, T* y, const ConvGeometry& g, const OpName& name) {
  const std::int64_t total = g.output_pixels() * g.out_c;
  with_index_geometry(g, [&](const auto& geometry) { launch_avg_pool(x, y, geometry, total, name); });
}

template <class T>
void avg_pool_backward(const T* dy, T* dx, const ConvGeometry& g, const OpName& name) {
  const std::int64_t total = g.input_pixels() * g.in_c;
  with_index_geometry(g, [&](const auto& geometry) { launch_avg_pool_backward(dy, dx, geometry, total, name); });
}

template <class T>
void max_pool(const T* x, T* y, const ConvGeometry& g, const OpName& name) {
  const std::int64_t total = g.output_pixels() * g.out_c;
  with_index_geometry(g, [&](const auto& geometry) { launch_max_pool(x, y, geometry, total, name); });
}

template <class T>
void max_pool_backward(const T* dy, const T* x, T* dx, const ConvGeometry& g, const OpName& name) {
  const std::int64_t total = g.input_pixels() * g.in_c;
  with_index_geometry(g, [&](const auto& geometry) { launch_max_pool_backward(dy, x, dx, geometry, total, name); });
}

}  // namespace petal::cuda_conv

namespace petal::cuda_ops {

using namespace cuda_conv;

Tensor zero_pad2d(const Tensor& x_in, std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"zero_pad2d", operands({{"x", &x_in}})};
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1) + top + bottom, x.size(2) + left + right, x.size(3)}, x.dtype(),
                           x.device());
  dispatch_bits(x.itemsize(), [&](auto tag) {
    using E = decltype(tag);
    const E* src = static_cast<const E*>(x.raw_data());
    E* dst = static_cast<E*>(y.raw_data());
    if (fits_32bit(x.shape(), y.shape())) {
      pad<std::int32_t>(src, dst, x.shape(), y.shape(), std::int32_t(top), std::int32_t(left), name);
    } else {
      pad<std::int64_t>(src, dst, x.shape(), y.shape(), top, left, name);
    }
  });
  return y;
}

Tensor zero_pad2d_backward(const Tensor& grad_in, std::int64_t top, std::int64_t bottom, std::int64_t left,
                           std::int64_t right) {
  const cuda::DeviceGuard guard(grad_in.device());
  const OpName name{"zero_pad2d_backward", operands({{"gradient", &grad_in}})};
  const Tensor grad = grad_in.contiguous();
  Tensor dx = Tensor::empty({grad.size(0), grad.size(1) - top - bottom, grad.size(2) - left - right, grad.size(3)},
                            grad.dtype(), grad.device());
  dispatch_bits(grad.itemsize(), [&](auto tag) {
    using E = decltype(tag);
    const E* src = static_cast<const E*>(grad.raw_data());
    E* dst = static_cast<E*>(dx.raw_data());
    if (fits_32bit(grad.shape(), dx.shape())) {
      crop<std::int32_t>(src, dst, grad.shape(), dx.shape(), std::int32_t(top), std::int32_t(left), name);
    } else {
      crop<std::int64_t>(src, dst, grad.shape(), dx.shape(), top, left, name);
    }
  });
  return dx;
}

Tensor global_average_pool2d(const Tensor& x_in) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"global_average_pool2d", operands({{"x", &x_in}})};
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(3)}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    global_average<T>(x.data<T>(), y.data<T>(), x.size(1) * x.size(2), x.size(3), y.numel(), name);
  });
  return y;
}

Tensor global_average_pool2d_backward(const Tensor& grad_in, const Shape& input_shape) {
  const cuda::DeviceGuard guard(grad_in.device());
  const OpName name{"global_average_pool2d_backward", operands({{"gradient", &grad_in}})};
  const Tensor grad = grad_in.contiguous();
  Tensor dx = Tensor::empty(input_shape, grad.dtype(), grad.device());
  dispatch_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    global_average_backward<T>(grad.data<T>(), dx.data<T>(), input_shape[1] * input_shape[2], input_shape[3],
                               dx.numel(), name);
  });
  return dx;
}

Tensor average_pool2d(const Tensor& x_in, const ConvGeometry& g) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"average_pool2d", operands({{"x", &x_in}})};
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({g.batch, g.out_h, g.out_w, g.out_c}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool<T>(x.data<T>(), y.data<T>(), g, name);
  });
  return y;
}

Tensor average_pool2d_backward(const Tensor& grad_in, const ConvGeometry& g) {
  const cuda::DeviceGuard guard(grad_in.device());
  const OpName name{"average_pool2d_backward", operands({{"gradient", &grad_in}})};
  const Tensor grad = grad_in.contiguous();
  Tensor dx = Tensor::empty({g.batch, g.in_h, g.in_w, g.in_c}, grad.dtype(), grad.device());
  dispatch_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda_conv::avg_pool_backward<T>(grad.data<T>(), dx.data<T>(), g, name);
  });
  return dx;
}

Tensor max_pool2d(const Tensor& x_in, const ConvGeometry& g) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"max_pool2d", operands({{"x", &x_in}})};
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({g.batch, g.out_h, g.out_w, g.out_c}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool<T>(x.data<T>(), y.data<T>(), g, name);
  });
  return y;
}

Tensor max_pool2d_backward(const Tensor& grad_in, const Tensor& x_in, const ConvGeometry& g) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"max_pool2d_backward", operands({{"gradient", &grad_in}, {"x", &x_in}})};
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda_conv::max_pool_backward<T>(grad.data<T>(), x.data<T>(), dx.data<T>(), g, name);
  });
  return dx;
}

}  // namespace petal::cuda_ops
