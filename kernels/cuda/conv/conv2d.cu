// Conv2D on CUDA (NHWC, HWIO). Row-major y [P, Cout] = col [P, K] x W [K, Cout]
// with P = N * out_h * out_w, K = kh * kw * Cin (conv_body.hpp); the cuBLAS
// calls (operand order, transposes, leading dimensions) are gemm_plan.hpp.
// - 1x1, stride 1, no padding: col is x itself, one GEMM, no copy.
// - Cin <= 4 (the 3 -> 32 stem): a direct kernel, one thread per output
//   element with bias and ReLU6 fused.
// - otherwise: im2col of a chunk of images into a bounded workspace, then a
//   GEMM per chunk; bias and ReLU6 in one epilogue pass.
// Backward: dx = col2im(dy W^T) (a gather, no atomics) and
// dW = sum over chunks of col^T dy (beta = 1 after the first chunk); the
// bias gradient is the deterministic column reduction of dy.
#include "kernels/cuda/conv/conv_body.hpp"
#include "kernels/cuda/conv/conv_launch.cuh"
#include "kernels/cuda/conv/gemm_plan.hpp"
#include "kernels/cuda/cuda_conv_ops.hpp"

namespace petal::cuda_conv {

namespace body = cuda_body;

using body::is_pointwise_gemm;
using body::uses_direct_kernel;

// Each launch below is a template over the geometry type G (64-bit
// kernels::ConvGeometry or cuda_body::ConvGeometry32): the callers pass the
// 32-bit one whenever body::fits_32bit says every index fits.

template <class T, class G>
void launch_im2col(const T* x, const G& g, T* col, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  const I k_count = body::conv_columns(g);
  for_each_index(
      total,
      [=] __device__(std::int64_t i) {
        const I j = I(i);
        col[j] = body::im2col_element(x, g, j / k_count, j % k_count);
      },
      name, "im2col");
}

template <class T>
void fill_im2col(const T* x, const ConvGeometry& g, T* col, const OpName& name) {
  const std::int64_t total = g.output_pixels() * body::conv_columns(g);
  with_index_geometry(g, [&](const auto& geometry) { launch_im2col(x, geometry, col, total, name); });
}

template <class T, class G>
void launch_direct(const T* x, const T* w, const T* bias, T* y, const G& g, bool relu6, std::int64_t total,
                   const OpName& name) {
  using I = body::IndexOf<G>;
  launch_output_with_epilogue(
      y, bias, g, relu6, total, [=] __device__(I o) { return body::conv2d_direct_element(x, w, g, o); }, name,
      "direct convolution");
}

template <class T, class I>
void launch_epilogue(T* y, const T* bias, I out_c, bool relu6, std::int64_t total, const OpName& name) {
  for_each_index(
      total,
      [=] __device__(std::int64_t i) {
        const I o = I(i);
        y[o] = body::conv_epilogue(y[o], bias, o % out_c, relu6);
      },
      name, "bias/ReLU6 epilogue");
}

template <class T, class G>
void launch_col2im(const T* dcol, const G& g, T* dx, std::int64_t total, const OpName& name) {
  using I = body::IndexOf<G>;
  for_each_index(
      total, [=] __device__(std::int64_t i) { dx[i] = body::col2im_gather(dcol, g, I(i)); }, name, "col2im");
}

// Runs fn(first_image, chunk_geometry, col) over chunks of whole images
// whose im2col matrix fits the workspace (one buffer for all chunks).
template <class T, class Fn>
void for_each_im2col_chunk(const ConvGeometry& g, Device device, Fn&& fn) {
  const std::int64_t images = body::im2col_chunk_images(g, kIm2colWorkspaceElements);
  const Tensor col_buffer = workspace<T>(images * g.out_h * g.out_w * body::conv_columns(g), device);
  for (std::int64_t first = 0; first < g.batch; first += images)
    fn(first, body::chunk_geometry(g, std::min(images, g.batch - first)), col_buffer.data<T>());
}

template <class T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g, bool relu6, Device device,
                    const OpName& name) {
  const std::int64_t out_c = g.out_c, total = g.output_pixels() * g.out_c;
  if (uses_direct_kernel(g)) {
    with_index_geometry(g, [&](const auto& geometry) { launch_direct(x, w, bias, y, geometry, relu6, total, name); });
    return;
  }
  const std::int64_t k_count = body::conv_columns(g);
  if (is_pointwise_gemm(g)) {
    gemm<T>(body::forward_gemm(g.output_pixels(), k_count, out_c), w, x, T(0), y, name);
  } else {
    for_each_im2col_chunk<T>(g, device, [&](std::int64_t first, const ConvGeometry& cg, T* col) {
      fill_im2col(x + first * g.in_h * g.in_w * g.in_c, cg, col, name);
      gemm<T>(body::forward_gemm(cg.output_pixels(), k_count, out_c), w, col, T(0),
              y + first * g.out_h * g.out_w * out_c, name);
    });
  }
  if (bias || relu6) {
    if (body::fits_32bit(g)) {
      launch_epilogue(y, bias, std::int32_t(out_c), relu6, total, name);
    } else {
      launch_epilogue(y, bias, out_c, relu6, total, name);
    }
  }
}

template <class T>
void conv2d_backward_input(const T* dy, const T* w, T* dx, const ConvGeometry& g, Device device, const OpName& name) {
  const std::int64_t out_c = g.out_c, k_count = body::conv_columns(g);
  if (is_pointwise_gemm(g)) {
    gemm<T>(body::backward_input_gemm(g.output_pixels(), k_count, out_c), w, dy, T(0), dx, name);
    return;
  }
  for_each_im2col_chunk<T>(g, device, [&](std::int64_t first, const ConvGeometry& cg, T* dcol) {
    gemm<T>(body::backward_input_gemm(cg.output_pixels(), k_count, out_c), w, dy + first * g.out_h * g.out_w * out_c,
            T(0), dcol, name);
    T* dx_chunk = dx + first * g.in_h * g.in_w * g.in_c;
    const std::int64_t total = cg.input_pixels() * cg.in_c;
    with_index_geometry(cg, [&](const auto& geometry) { launch_col2im(dcol, geometry, dx_chunk, total, name); });
  });
}

template <class T>
void conv2d_backward_kernel(const T* dy, const T* x, T* dw, T* db, const ConvGeometry& g, Device device,
                            const OpName& name) {
  const std::int64_t out_c = g.out_c, k_count = body::conv_columns(g);
  if (is_pointwise_gemm(g)) {
    gemm<T>(body::backward_kernel_gemm(g.output_pixels(), k_count, out_c), dy, x, T(0), dw, name);
  } else {
    for_each_im2col_chunk<T>(g, device, [&](std::int64_t first, const ConvGeometry& cg, T* col) {
      fill_im2col(x + first * g.in_h * g.in_w * g.in_c, cg, col, name);
      gemm<T>(body::backward_kernel_gemm(cg.output_pixels(), k_count, out_c), dy + first * g.out_h * g.out_w * out_c,
              col, first == 0 ? T(0) : T(1), dw, name);
    });
  }
  if (db) channel_sums(dy, g.output_pixels(), out_c, db, device, name);
}

}  // namespace petal::cuda_conv

namespace petal::cuda_ops {

using namespace cuda_conv;

Tensor conv2d(const Tensor& x_in, const Tensor& kernel_in, const Tensor& bias_in, const ConvGeometry& g, bool relu6) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"conv2d", operands({{"x", &x_in}, {"kernel", &kernel_in}, {"bias", &bias_in}})};
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = Tensor::empty({g.batch, g.out_h, g.out_w, g.out_c}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    conv2d_forward<T>(x.data<T>(), kernel.data<T>(), data_or_null<T>(bias), y.data<T>(), g, relu6, x.device(), name);
  });
  return y;
}

Tensor conv2d_backward_input(const Tensor& grad_in, const Tensor& kernel_in, const ConvGeometry& g) {
  const cuda::DeviceGuard guard(grad_in.device());
  const OpName name{"conv2d_backward_input", operands({{"gradient", &grad_in}, {"kernel", &kernel_in}})};
  const Tensor grad = grad_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor dx = Tensor::empty({g.batch, g.in_h, g.in_w, g.in_c}, grad.dtype(), grad.device());
  dispatch_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda_conv::conv2d_backward_input<T>(grad.data<T>(), kernel.data<T>(), dx.data<T>(), g, grad.device(), name);
  });
  return dx;
}

Tensor conv2d_backward_kernel(const Tensor& grad_in, const Tensor& x_in, const Shape& kernel_shape,
                              const ConvGeometry& g, Tensor* grad_bias) {
  const cuda::DeviceGuard guard(x_in.device());
  const OpName name{"conv2d_backward_kernel", operands({{"gradient", &grad_in}, {"x", &x_in}})};
  const Tensor grad = grad_in.contiguous(), x = x_in.contiguous();
  Tensor dw = Tensor::empty(kernel_shape, x.dtype(), x.device());
  Tensor db = grad_bias ? Tensor::empty({g.out_c}, x.dtype(), x.device()) : Tensor();
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda_conv::conv2d_backward_kernel<T>(grad.data<T>(), x.data<T>(), dw.data<T>(), grad_bias ? db.data<T>() : nullptr,
                                         g, x.device(), name);
  });
  if (grad_bias) *grad_bias = db;
  return dw;
}

}  // namespace petal::cuda_ops
