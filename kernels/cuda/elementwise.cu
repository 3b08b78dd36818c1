// Elementwise CUDA kernels: binary ops over NumPy broadcasting and strided
// inputs, unary and scalar ops, and the in-place updates. One grid-stride
// kernel per arity maps each output position to its operands' offsets
// (strided_index.hpp); the per-element formulas are in elementwise_body.hpp.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/elementwise_body.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/strided_index.hpp"

namespace petal::cuda_ops {
namespace {

using cuda::blocks_for;
using cuda::make_indexer;
using cuda::StridedIndexer;

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
  const Strides strides[3] = {out.strides(), cuda::broadcast_to_strides(a.shape(), a.strides(), shape),
                              cuda::broadcast_to_strides(b.shape(), b.strides(), shape)};
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
  const Strides strides[2] = {out.strides(), cuda::broadcast_to_strides(a.shape(), a.strides(), shape)};
  const StridedIndexer<2> ix = make_indexer<2>(op, shape, strides);
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(out.device());
  map1_kernel<<<blocks_for(n), 256, 0, cuda::current_stream()>>>(ix, n, static_cast<T*>(out.raw_data()),
                                                                 static_cast<const T*>(a.raw_data()), f);
  cuda::check_launch(str_cat(op, " ", shape_str(a.shape())));
}

// Calls fn(T{}) for float32 or float64.
template <class Fn>
void dispatch_floating(DType dtype, Fn&& fn) {
  if (dtype == DType::Float32)
    fn(float{});
  else
    fn(double{});
}

// The per-element functors (extended __device__ lambdas cannot live inside
// the generic lambdas that pick the dtype).
template <Binary kOp>
struct BinaryFn {
  template <class T> __device__ T operator()(T x, T y) const { return cuda::binary_body(kOp, x, y); }
};
template <Unary kOp>
struct UnaryFn {
  template <class T> __device__ T operator()(T x) const { return cuda::unary_body(kOp, x); }
};
template <class T>
struct AffineFn {
  T scale, shift;
  __device__ T operator()(T x) const { return x * scale + shift; }
};
template <class T>
struct ScaleFn {
  T factor;
  __device__ T operator()(T x) const { return x * factor; }
};
template <class T>
struct PowFn {
  T exponent;
  __device__ T operator()(T x) const { return cuda::pow_body(x, exponent); }
};
template <class T>
struct ClampFn {
  T low, high;
  __device__ T operator()(T x) const { return cuda::clamp_body(x, low, high); }
};
template <class T>
struct ClipFn {
  T low, high;
  __device__ T operator()(T x) const { return cuda::clip_body(x, low, high); }
};
template <class T>
struct AxpyFn {
  T alpha;
  __device__ T operator()(T x, T y) const { return x + alpha * y; }
};

template <Binary kOp>
Tensor binary_as(const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_map2<T>("binary", out, a, b, BinaryFn<kOp>{});
  });
  return out;
}

template <Unary kOp>
Tensor unary_as(const Tensor& a) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_map1<T>("unary", out, a, UnaryFn<kOp>{});
  });
  return out;
}

}  // namespace

Tensor binary(Binary op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  switch (op) {
    case Binary::Add: return binary_as<Binary::Add>(a, b, out_shape);
    case Binary::Sub: return binary_as<Binary::Sub>(a, b, out_shape);
    case Binary::Mul: return binary_as<Binary::Mul>(a, b, out_shape);
    case Binary::Div: return binary_as<Binary::Div>(a, b, out_shape);
    case Binary::Maximum: return binary_as<Binary::Maximum>(a, b, out_shape);
    case Binary::Minimum: return binary_as<Binary::Minimum>(a, b, out_shape);
    case Binary::ReluBackward: return binary_as<Binary::ReluBackward>(a, b, out_shape);
    case Binary::Relu6Backward: return binary_as<Binary::Relu6Backward>(a, b, out_shape);
    case Binary::SigmoidBackward: return binary_as<Binary::SigmoidBackward>(a, b, out_shape);
    case Binary::TanhBackward: return binary_as<Binary::TanhBackward>(a, b, out_shape);
  }
  throw ValueError("cuda_ops::binary: unknown op");
}

Tensor unary(Unary op, const Tensor& a) {
  switch (op) {
    case Unary::Neg: return unary_as<Unary::Neg>(a);
    case Unary::Exp: return unary_as<Unary::Exp>(a);
    case Unary::Log: return unary_as<Unary::Log>(a);
    case Unary::Sqrt: return unary_as<Unary::Sqrt>(a);
    case Unary::Abs: return unary_as<Unary::Abs>(a);
    case Unary::Relu: return unary_as<Unary::Relu>(a);
    case Unary::Relu6: return unary_as<Unary::Relu6>(a);
    case Unary::Sigmoid: return unary_as<Unary::Sigmoid>(a);
    case Unary::Tanh: return unary_as<Unary::Tanh>(a);
  }
  throw ValueError("cuda_ops::unary: unknown op");
}

Tensor affine(const Tensor& a, double scale, double shift) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T s = static_cast<T>(scale), t = static_cast<T>(shift);
    launch_map1<T>("affine", out, a, AffineFn<T>{s, t});
  });
  return out;
}

Tensor pow_scalar(const Tensor& a, double exponent) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T e = static_cast<T>(exponent);
    launch_map1<T>("pow_scalar", out, a, PowFn<T>{e});
  });
  return out;
}

Tensor clamp(const Tensor& a, double low, double high) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T lo = static_cast<T>(low), hi = static_cast<T>(high);
    launch_map1<T>("clamp", out, a, ClampFn<T>{lo, hi});
  });
  return out;
}

void add_(Tensor& a, const Tensor& b, double alpha) {
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T al = static_cast<T>(alpha);
    launch_map2<T>("add_", a, a, b, AxpyFn<T>{al});
  });
}

void mul_scalar_(Tensor& a, double s) {
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T f = static_cast<T>(s);
    launch_map1<T>("mul_scalar_", a, a, ScaleFn<T>{f});
  });
}

void clamp_(Tensor& a, double low, double high) {
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T lo = static_cast<T>(low), hi = static_cast<T>(high);
    launch_map1<T>("clamp_", a, a, ClipFn<T>{lo, hi});
  });
}

}  // namespace petal::cuda_ops
