// Elementwise CUDA kernels: binary ops over NumPy broadcasting and strided
// inputs, unary and scalar ops, and the in-place updates. One grid-stride
// kernel per arity maps each output position to its operands' offsets
// (strided_index.hpp); the ops and their per-element formulas are
// kernels/portable/elementwise_ops.hpp, shared with the CPU ops.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/strided_index.hpp"
#include "kernels/portable/dispatch.hpp"
#include "kernels/portable/elementwise_ops.hpp"
#include "kernels/portable/strided_loop.hpp"

namespace petal::cuda_ops {
namespace {

using cuda::blocks_for;
using cuda::make_indexer;
using cuda::StridedIndexer;
using kernels::BinaryOp;
using kernels::dispatch_floating;
using kernels::UnaryOp;

// out[i] = f(a[ia], b[ib]) over the output's positions.
template <class T, class F>
__global__ void map2_kernel(StridedIndexer<3> ix, std::int64_t n, T* out, const T* a, const T* b, F f) {
  PETAL_GRID_STRIDE_LOOP(i, n) {
    std::int64_t off[3];
    ix.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

// out[i] = f(a[ia]); out may alias a (in-place updates of a strided target).
template <class T, class F>
__global__ void map1_kernel(StridedIndexer<2> ix, std::int64_t n, T* out, const T* a, F f) {
  PETAL_GRID_STRIDE_LOOP(i, n) {
    std::int64_t off[2];
    ix.offsets(i, off);
    out[off[0]] = f(a[off[1]]);
  }
}

template <class T, class F>
void launch_map2(const char* op, Tensor& out, const Tensor& a, const Tensor& b, F f) {
  const Shape& shape = out.shape();
  const Strides strides[3] = {out.strides(), kernels::broadcast_strides(a.shape(), a.strides(), shape),
                              kernels::broadcast_strides(b.shape(), b.strides(), shape)};
  const StridedIndexer<3> ix = make_indexer<3>(op, shape, strides);
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(out.device());
  map2_kernel<<<blocks_for(n), 256, 0, cuda::current_stream()>>>(ix, n, static_cast<T*>(out.raw_data()),
                                                                 static_cast<const T*>(a.raw_data()),
                                                                 static_cast<const T*>(b.raw_data()), f);
  cuda::check_launch(str_cat(op, " ", shape_str(a.shape()), " and ", shape_str(b.shape())));
}

template <class T, class F>
void launch_map1(const char* op, Tensor& out, const Tensor& a, F f) {
  const Shape& shape = out.shape();
  const Strides strides[2] = {out.strides(), kernels::broadcast_strides(a.shape(), a.strides(), shape)};
  const StridedIndexer<2> ix = make_indexer<2>(op, shape, strides);
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(out.device());
  map1_kernel<<<blocks_for(n), 256, 0, cuda::current_stream()>>>(ix, n, static_cast<T*>(out.raw_data()),
                                                                 static_cast<const T*>(a.raw_data()), f);
  cuda::check_launch(str_cat(op, " ", shape_str(a.shape())));
}

// The per-element functors (extended __device__ lambdas cannot live inside
// the generic lambdas that pick the dtype); the formulas are
// kernels/portable/elementwise_ops.hpp.
template <BinaryOp kOp>
struct BinaryFn {
  template <class T> __device__ T operator()(T x, T y) const { return kernels::binary_value<kOp>(x, y); }
};
template <UnaryOp kOp>
struct UnaryFn {
  template <class T> __device__ T operator()(T x) const { return kernels::unary_value<kOp>(x); }
};
template <class T>
struct AffineFn {
  T scale, shift;
  __device__ T operator()(T x) const { return kernels::affine_value(x, scale, shift); }
};
template <class T>
struct ScaleFn {
  T factor;
  __device__ T operator()(T x) const { return kernels::scale_value(x, factor); }
};
template <class T>
struct PowFn {
  T exponent;
  __device__ T operator()(T x) const { return kernels::pow_exact_value(x, exponent); }
};
template <class T>
struct ClampFn {
  T low, high;
  __device__ T operator()(T x) const { return kernels::clamp_value(x, low, high); }
};
template <class T>
struct ClipFn {
  T low, high;
  __device__ T operator()(T x) const { return kernels::clip_value(x, low, high); }
};
template <class T>
struct AxpyFn {
  T alpha;
  __device__ T operator()(T y, T x) const { return kernels::axpy_value(y, alpha, x); }
};

// out = Fn<T>{params...}(a) elementwise, out written in place when it is a.
template <template <class> class Fn, class... Params>
void map1_into(const char* op, Tensor& out, const Tensor& a, Params... params) {
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_map1<T>(op, out, a, Fn<T>{static_cast<T>(params)...});
  });
}

// A new tensor Fn<T>{params...}(a).
template <template <class> class Fn, class... Params>
Tensor map1_new(const char* op, const Tensor& a, Params... params) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  map1_into<Fn>(op, out, a, params...);
  return out;
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  kernels::visit_op(op, [&](auto kind) {
    dispatch_floating(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      launch_map2<T>("binary", out, a, b, BinaryFn<decltype(kind)::value>{});
    });
  });
  return out;
}

Tensor unary(UnaryOp op, const Tensor& a) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels::visit_op(op, [&](auto kind) {
    dispatch_floating(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      launch_map1<T>("unary", out, a, UnaryFn<decltype(kind)::value>{});
    });
  });
  return out;
}

Tensor affine(const Tensor& a, double scale, double shift) { return map1_new<AffineFn>("affine", a, scale, shift); }

Tensor pow_scalar(const Tensor& a, double exponent) { return map1_new<PowFn>("pow_scalar", a, exponent); }

Tensor clamp(const Tensor& a, double low, double high) { return map1_new<ClampFn>("clamp", a, low, high); }

void add_(Tensor& a, const Tensor& b, double alpha) {
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_map2<T>("add_", a, a, b, AxpyFn<T>{static_cast<T>(alpha)});
  });
}

void mul_scalar_(Tensor& a, double s) { map1_into<ScaleFn>("mul_scalar_", a, a, s); }

void clamp_(Tensor& a, double low, double high) { map1_into<ClipFn>("clamp_", a, a, low, high); }

}  // namespace petal::cuda_ops
