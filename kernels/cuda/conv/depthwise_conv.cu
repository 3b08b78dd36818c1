// DepthwiseConv2D on CUDA over NHWC: one thread per output element (forward)
// or input element (input gradient), the flattened channel innermost so a
// warp reads and writes 32 consecutive channels. Bias and ReLU6 are fused in
// the forward epilogue. The kernel gradient is the deterministic column
// reduction of depthwise_kernel_grad_term over the output pixels, one
// column per (tap, output channel). See depthwise_body.hpp.
#include "kernels/cuda/conv/conv_launch.cuh"
#include "kernels/cuda/conv/depthwise_body.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"

namespace petal::cuda_conv {

namespace body = cuda_body;

// Each launch is a template over the geometry type (see conv2d.cu): the
// 32-bit one whenever every index fits.
template <class T, class G>
void launch_forward(const T* x, const T* w, const T* bias, T* y, const G& g, bool relu6, std::int64_t total,
                    const OpName& name) {
  using I = body::IndexOf<G>;
  launch_output_with_epilogue(
      y, bias, g, relu6, total, [=] __device__(I o) { return body::depthwise_output_element(x, w, g, o); }, name,
      "depthwise forward");
}

// Calls launch(geometry) with the narrowest geometry type that fits g:
// 32- or 64-bit indices, with the multiplier-1 fast path when out_c == in_c.
template <class Launch>
void with_depthwise_geometry(const ConvGeometry& g, Launch&& launch) {
  const bool unit = g.out_c == g.in_c;
  with_index_geometry(g, [&](const auto& geometry) {
    if (unit) {
      launch(body::unit_multiplier(geometry));
    } else {
      launch(geometry);
    }
  });
}

template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g, bool relu6,
                       const OpName& name) {
  const std::int64_t total = g.output_pixels() * g.out_c;
  with_depthwise_geometry(g, [&](const auto& geometry) { launch_forward(x, w, bias, y, geometry, relu6, total, name); });
}

template <class T, class G>
void launch_input_grad(const T* dy, const T* w, T* dx, const G& g, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  for_each_index(
      total, [=] __device__(std::int64_t i) { dx[i] = body::depthwise_input_grad_element(dy, w, g, I(i)); }, name,
      "input gradient");
}

template <class T>
void depthwise_backward_input(const T* dy, const T* w, T* dx, const ConvGeometry& g, const OpName& name) {
  const std::int64_t total = g.input_pixels() * g.in_c;
  with_depthwise_geometry(g, [&](const auto& geometry) { launch_input_grad(dy, w, dx, geometry, total, name); });
}

template <class T, class G>
struct DepthwiseKernelGradTerm {
  const T *dy, *x;
  G g;
  __device__ Sum2 operator()(std::int64_t p, std::int64_t column) const {
    using I = body::IndexOf<G>;
    return {double(body::depthwise_kernel_grad_term(dy, x, g, I(p), I(column))), 0.0};
  }
};

template <class T>
void depthwise_backward_kernel(const T* dy, const T* x, T* dw, T* db, const ConvGeometry& g, Device device,
                               const OpName& name) {
  const std::int64_t columns = g.taps() * g.out_c;
  ColumnSums sums;
  with_depthwise_geometry(g, [&](const auto& geometry) {
    using G = std::decay_t<decltype(geometry)>;
    sums = column_reduce(DepthwiseKernelGradTerm<T, G>{dy, x, geometry}, g.output_pixels(), columns, device, name,
                         "kernel gradient");
  });
  sums_to_values_kernel<<<static_cast<unsigned>((columns + 255) / 256), 256, 0, cuda::current_stream()>>>(
      sums.sums, columns, dw);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) cuda::throw_cuda_error(describe(name, "kernel gradient"), status);
  if (db) channel_sums(dy, g.output_pixels(), g.out_c, db, device, name);
}

}  // namespace petal::cuda_conv

namespace petal::cuda_ops {

using namespace cuda_conv;

Tensor depthwise_conv2d(const Tensor& x_in, const Tensor& kernel_in, const Tensor& bias_in, const ConvGeometry& g,
                        bool relu6) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"depthwise_conv2d", operands({{"x", &x_in}, {"kernel", &kernel_in}, {"bias", &bias_in}})};
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = Tensor::empty({g.batch, g.out_h, g.out_w, g.out_c}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    depthwise_forward<T>(x.data<T>(), kernel.data<T>(), data_or_null<T>(bias), y.data<T>(), g, relu6, name);
  });
  return y;
}

Tensor depthwise_conv2d_backward_input(const Tensor& grad_in, const Tensor& kernel_in, const ConvGeometry& g) {
  const cuda::DeviceGuard guard(grad_in.device());
  const OpName name{"depthwise_conv2d_backward_input", operands({{"gradient", &grad_in}, {"kernel", &kernel_in}})};
  const Tensor grad = grad_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor dx = Tensor::empty({g.batch, g.in_h, g.in_w, g.in_c}, grad.dtype(), grad.device());
  dispatch_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    depthwise_backward_input<T>(grad.data<T>(), kernel.data<T>(), dx.data<T>(), g, name);
  });
  return dx;
}

Tensor depthwise_conv2d_backward_kernel(const Tensor& grad_in, const Tensor& x_in, const Shape& kernel_shape,
                                        const ConvGeometry& g, Tensor* grad_bias) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"depthwise_conv2d_backward_kernel", operands({{"gradient", &grad_in}, {"x", &x_in}})};
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dw = Tensor::empty(kernel_shape, x.dtype(), x.device());
  Tensor db = grad_bias ? Tensor::empty({g.out_c}, x.dtype(), x.device()) : Tensor();
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    depthwise_backward_kernel<T>(grad.data<T>(), x.data<T>(), dw.data<T>(), grad_bias ? db.data<T>() : nullptr, g,
                                 x.device(), name);
  });
  if (grad_bias) *grad_bias = db;
  return dw;
}

}  // namespace petal::cuda_ops
