// Elementwise ops: binary with NumPy broadcasting, with a scalar, unary, and
// the fused activation backward helpers. The ops and their per-element
// formulas are kernels/portable/elementwise_ops.hpp (shared with the CUDA
// kernels). The strided loop reduces every case to runs along the innermost
// axis; float32 runs that are contiguous (or a broadcast scalar) go to the
// per-ISA kernels, everything else (float64, transposed inputs) to a plain
// loop over the formula.
#include <type_traits>

#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"
#include "kernels/portable/elementwise_ops.hpp"

namespace petal::ops {
namespace {

using detail::kParallelGrain;
using kernels::BinaryOp;
using kernels::UnaryOp;

template <class T, BinaryOp kOp>
void binary_cpu(const Tensor& a, const Tensor& b, Tensor& out) {
  const auto loop = detail::make_strided_loop<3>(
      out.shape(), {out.strides(), detail::broadcast_strides(a, out.shape()), detail::broadcast_strides(b, out.shape())});
  T* po = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const std::int64_t so = loop.inner_stride(0), sa = loop.inner_stride(1), sb = loop.inner_stride(2);
  const cpu::BinaryRowKernels* fast = nullptr;
  if constexpr (std::is_same_v<T, float>) fast = &cpu::elementwise_table().binary[static_cast<int>(kOp)];
  detail::for_each_run<3>(loop, kParallelGrain, [&](const std::array<std::int64_t, 3>& off, std::int64_t n) {
    T* ro = po + off[0];
    const T* ra = pa + off[1];
    const T* rb = pb + off[2];
    if constexpr (std::is_same_v<T, float>) {
      if (so == 1 && sa == 1 && sb == 1) return fast->same(ra, rb, ro, n);
      if (so == 1 && sa == 1 && sb == 0) return fast->scalar_rhs(ra, *rb, ro, n);
      if (so == 1 && sa == 0 && sb == 1) return fast->scalar_lhs(*ra, rb, ro, n);
    }
    for (std::int64_t i = 0; i < n; ++i) ro[i * so] = kernels::binary_value<kOp>(ra[i * sa], rb[i * sb]);
  });
}

template <BinaryOp kOp>
Tensor binary_op(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_floating_operands(op, {&a, &b});
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  switch (detail::select_backend(op, {&a, &b})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: PETAL_CUDA_BRANCH(return cuda_ops::binary(kOp, a, b, shape));
  }
  Tensor out = Tensor::empty(shape, a.dtype());
  if (out.numel() == 0) return out;
  const Tensor a_runs = detail::unit_stride_inner(a), b_runs = detail::unit_stride_inner(b);
  if (a.dtype() == DType::Float32)
    binary_cpu<float, kOp>(a_runs, b_runs, out);
  else
    binary_cpu<double, kOp>(a_runs, b_runs, out);
  return out;
}

// The fused backward helpers take the gradient and the saved activation of
// the same shape (either may be a strided view).
template <BinaryOp kOp>
Tensor backward_op(const char* op, const Tensor& grad, const Tensor& saved) {
  detail::check_floating_operands(op, {&grad, &saved});
  detail::check_same_shape(op, grad, saved);
  return binary_op<kOp>(op, grad, saved);
}

// Unary ops: `fast` (float32 contiguous runs, may be null) and `scalar` (any).
template <class T, class Fast, class Scalar>
void unary_cpu(const Tensor& a, Tensor& out, Fast&& fast, Scalar&& scalar) {
  const auto loop = detail::make_strided_loop<2>(out.shape(), {out.strides(), a.strides()});
  T* po = out.data<T>();
  const T* pa = a.data<T>();
  const std::int64_t so = loop.inner_stride(0), sa = loop.inner_stride(1);
  detail::for_each_run<2>(loop, kParallelGrain, [&](const std::array<std::int64_t, 2>& off, std::int64_t n) {
    T* ro = po + off[0];
    const T* ra = pa + off[1];
    if constexpr (std::is_same_v<T, float>) {
      if (so == 1 && sa == 1 && fast(ra, ro, n)) return;
    }
    for (std::int64_t i = 0; i < n; ++i) ro[i * so] = scalar(ra[i * sa]);
  });
}

// fast(const float* in, float* out, n) returns false when it does not apply;
// on_cuda() -> Tensor runs the op on a CUDA tensor.
template <class Fast, class Scalar, class OnCuda>
Tensor unary_op(const char* op, const Tensor& a, Fast&& fast, Scalar&& scalar, OnCuda&& on_cuda) {
  detail::check_floating_operands(op, {&a});
  switch (detail::select_backend(op, {&a})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: return on_cuda();
  }
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  if (out.numel() == 0) return out;
  const Tensor a_runs = detail::unit_stride_inner(a);
  if (a.dtype() == DType::Float32)
    unary_cpu<float>(a_runs, out, fast, scalar);
  else
    unary_cpu<double>(a_runs, out, fast, scalar);
  return out;
}

template <UnaryOp kOp>
Tensor table_unary(const char* op, const Tensor& a) {
  const auto kernel = cpu::elementwise_table().unary[static_cast<int>(kOp)];
  return unary_op(
      op, a,
      [kernel](const float* in, float* out, std::int64_t n) {
        kernel(in, out, n);
        return true;
      },
      [](auto x) { return kernels::unary_value<kOp>(x); },
      [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::unary(kOp, a)); });
}

// Runs an in-place update a[i] = f(a[i], b[i]) over a (b broadcast to a).
template <class T, class Fast, class Scalar>
void inplace_cpu(Tensor& a, const Tensor* b, Fast&& fast, Scalar&& scalar) {
  const Strides b_strides = b ? detail::broadcast_strides(*b, a.shape()) : a.strides();
  const auto loop = detail::make_strided_loop<2>(a.shape(), {a.strides(), b_strides});
  T* pa = a.data<T>();
  const T* pb = b ? b->data<T>() : pa;
  const std::int64_t sa = loop.inner_stride(0), sb = loop.inner_stride(1);
  detail::for_each_run<2>(loop, kParallelGrain, [&](const std::array<std::int64_t, 2>& off, std::int64_t n) {
    T* ra = pa + off[0];
    const T* rb = pb + off[1];
    if constexpr (std::is_same_v<T, float>) {
      if (sa == 1 && fast(ra, rb, sb, n)) return;
    }
    for (std::int64_t i = 0; i < n; ++i) ra[i * sa] = scalar(ra[i * sa], rb[i * sb]);
  });
}

// An in-place target must not have two elements on one address.
void check_writable(const char* op, const Tensor& a) {
  for (std::int64_t d = 0; d < a.dim(); ++d)
    PETAL_CHECK(a.shape()[d] <= 1 || a.strides()[d] != 0, ValueError, op, ": the target of shape ",
                shape_str(a.shape()), " is a broadcast view (stride 0 on axis ", d, "); write into a copy");
}

}  // namespace

// ---- binary ----
Tensor add(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Add>("add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Sub>("sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Mul>("mul", a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Div>("div", a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Maximum>("maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Minimum>("minimum", a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op<BinaryOp::Pow>("pow", a, b); }

void add_(Tensor& a, const Tensor& b, double alpha) {
  const char* op = "add_";
  detail::check_floating_operands(op, {&a, &b});
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  PETAL_CHECK(shape == a.shape(), ShapeError, op, ": cannot add ", shape_str(b.shape()), " into ",
              shape_str(a.shape()), " in place (the broadcast shape is ", shape_str(shape), ")");
  check_writable(op, a);
  switch (detail::select_backend(op, {&a, &b})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: PETAL_CUDA_BRANCH(return cuda_ops::add_(a, b, alpha));
  }
  if (a.numel() == 0) return;
  const Tensor b_runs = detail::unit_stride_inner(b);
  if (a.dtype() == DType::Float32) {
    const auto& k = cpu::elementwise_table();
    const float fa = static_cast<float>(alpha);
    inplace_cpu<float>(
        a, &b_runs,
        [&](float* ra, const float* rb, std::int64_t sb, std::int64_t n) {
          if (sb == 1) k.axpy(fa, rb, ra, n);
          else if (sb == 0) k.affine(ra, 1.0f, fa * *rb, ra, n);
          else return false;
          return true;
        },
        [fa](float x, float y) { return kernels::axpy_value(x, fa, y); });
  } else {
    inplace_cpu<double>(a, &b_runs, [](auto...) { return false; },
                        [alpha](double x, double y) { return kernels::axpy_value(x, alpha, y); });
  }
}

// ---- with a scalar ----
namespace {
// A unary op with two scalar parameters p, q (affine's scale and shift,
// clamp's bounds): float32 contiguous runs go to the row kernel
// kernel(in, p, q, out, n), the rest to value(x, p, q) in the element type.
using TwoScalarRowKernel = void (*)(const float* in, float p, float q, float* out, std::int64_t n);
template <class Value, class OnCuda>
Tensor two_scalar_op(const char* op, const Tensor& a, TwoScalarRowKernel kernel, double p, double q, Value&& value,
                     OnCuda&& on_cuda) {
  const float fp = static_cast<float>(p), fq = static_cast<float>(q);
  return unary_op(
      op, a,
      [=](const float* in, float* out, std::int64_t n) {
        kernel(in, fp, fq, out, n);
        return true;
      },
      [&](auto x) {
        using T = decltype(x);
        return value(x, static_cast<T>(p), static_cast<T>(q));
      },
      on_cuda);
}

Tensor affine_op(const char* op, const Tensor& a, double scale, double shift) {
  return two_scalar_op(
      op, a, cpu::elementwise_table().affine, scale, shift,
      [](auto x, auto s, auto t) { return kernels::affine_value(x, s, t); },
      [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::affine(a, scale, shift)); });
}
}  // namespace

Tensor add_scalar(const Tensor& a, double s) { return affine_op("add_scalar", a, 1.0, s); }
Tensor mul_scalar(const Tensor& a, double s) { return affine_op("mul_scalar", a, s, 0.0); }

Tensor pow_scalar(const Tensor& a, double exponent) {
  // Common exponents have exact vector kernels; the rest, and float64 and
  // strided runs, use pow.
  const UnaryOp exact = kernels::pow_exact_form(exponent);
  const auto kernel = exact == UnaryOp::Count ? nullptr : cpu::elementwise_table().unary[static_cast<int>(exact)];
  return unary_op(
      "pow_scalar", a,
      [kernel](const float* in, float* out, std::int64_t n) {
        if (!kernel) return false;
        kernel(in, out, n);
        return true;
      },
      [exponent](auto x) {
        using T = decltype(x);
        return kernels::pow_value(x, static_cast<T>(exponent));
      },
      [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::pow_scalar(a, exponent)); });
}

void mul_scalar_(Tensor& a, double s) {
  const char* op = "mul_scalar_";
  detail::check_floating_operands(op, {&a});
  check_writable(op, a);
  switch (detail::select_backend(op, {&a})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: PETAL_CUDA_BRANCH(return cuda_ops::mul_scalar_(a, s));
  }
  if (a.numel() == 0) return;
  if (a.dtype() == DType::Float32) {
    const auto kernel = cpu::elementwise_table().affine;
    const float fs = static_cast<float>(s);
    inplace_cpu<float>(
        a, nullptr,
        [&](float* ra, const float*, std::int64_t, std::int64_t n) {
          kernel(ra, fs, 0.0f, ra, n);
          return true;
        },
        [fs](float x, float) { return kernels::scale_value(x, fs); });
  } else {
    inplace_cpu<double>(a, nullptr, [](auto...) { return false; },
                        [s](double x, double) { return kernels::scale_value(x, s); });
  }
}

// ---- unary ----
Tensor neg(const Tensor& a) { return table_unary<UnaryOp::Neg>("neg", a); }
Tensor exp(const Tensor& a) { return table_unary<UnaryOp::Exp>("exp", a); }
Tensor log(const Tensor& a) { return table_unary<UnaryOp::Log>("log", a); }
Tensor sqrt(const Tensor& a) { return table_unary<UnaryOp::Sqrt>("sqrt", a); }
Tensor abs(const Tensor& a) { return table_unary<UnaryOp::Abs>("abs", a); }
Tensor relu(const Tensor& a) { return table_unary<UnaryOp::Relu>("relu", a); }
Tensor relu6(const Tensor& a) { return table_unary<UnaryOp::Relu6>("relu6", a); }
Tensor sigmoid(const Tensor& a) { return table_unary<UnaryOp::Sigmoid>("sigmoid", a); }
Tensor tanh(const Tensor& a) { return table_unary<UnaryOp::Tanh>("tanh", a); }
Tensor gelu(const Tensor& a) { return table_unary<UnaryOp::Gelu>("gelu", a); }
Tensor silu(const Tensor& a) { return table_unary<UnaryOp::Silu>("silu", a); }
Tensor softplus(const Tensor& a) { return table_unary<UnaryOp::Softplus>("softplus", a); }

Tensor leaky_relu(const Tensor& a, double negative_slope) {
  // One pass of the portable formula on the CPU (no SIMD table entry: it
  // takes a parameter); on other devices the same values from ops that have
  // device kernels: slope * x + (1 - slope) * relu(x).
  return unary_op(
      "leaky_relu", a, [](const float*, float*, std::int64_t) { return false; },
      [negative_slope](auto x) {
        using T = decltype(x);
        return kernels::leaky_relu_value(x, static_cast<T>(negative_slope));
      },
      [&]() -> Tensor {
        Tensor out = mul_scalar(relu(a), 1.0 - negative_slope);
        add_(out, a, negative_slope);
        return out;
      });
}

Tensor clamp(const Tensor& a, double low, double high) {
  PETAL_CHECK(low <= high, ValueError, "clamp: low ", low, " is above high ", high, " (tensor of shape ",
              a.defined() ? shape_str(a.shape()) : std::string("<undefined>"), ")");
  return two_scalar_op(
      "clamp", a, cpu::elementwise_table().clamp, low, high,
      [](auto x, auto lo, auto hi) { return kernels::clamp_value(x, lo, hi); },
      [&]() -> Tensor { PETAL_CUDA_BRANCH(return cuda_ops::clamp(a, low, high)); });
}

void clamp_(Tensor& a, double low, double high) {
  const char* op = "clamp_";
  detail::check_floating_operands(op, {&a});
  PETAL_CHECK(low <= high, ValueError, op, ": low ", low, " is above high ", high, " (tensor of shape ",
              shape_str(a.shape()), ")");
  check_writable(op, a);
  switch (detail::select_backend(op, {&a})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: PETAL_CUDA_BRANCH(return cuda_ops::clamp_(a, low, high));
  }
  if (a.numel() == 0) return;
  // fmin/fmax as nn's clipvalue always did: NaN becomes the bound it meets first.
  if (a.dtype() == DType::Float32) {
    const float lo = static_cast<float>(low), hi = static_cast<float>(high);
    inplace_cpu<float>(a, nullptr, [](auto...) { return false; },
                       [lo, hi](float x, float) { return kernels::clip_value(x, lo, hi); });
  } else {
    inplace_cpu<double>(a, nullptr, [](auto...) { return false; },
                        [low, high](double x, double) { return kernels::clip_value(x, low, high); });
  }
}

// ---- fused backward helpers ----
Tensor relu_backward(const Tensor& grad, const Tensor& x) {
  return backward_op<BinaryOp::ReluBackward>("relu_backward", grad, x);
}
Tensor relu6_backward(const Tensor& grad, const Tensor& x) {
  return backward_op<BinaryOp::Relu6Backward>("relu6_backward", grad, x);
}
Tensor sigmoid_backward(const Tensor& grad, const Tensor& y) {
  return backward_op<BinaryOp::SigmoidBackward>("sigmoid_backward", grad, y);
}
Tensor tanh_backward(const Tensor& grad, const Tensor& y) {
  return backward_op<BinaryOp::TanhBackward>("tanh_backward", grad, y);
}
Tensor abs_backward(const Tensor& grad, const Tensor& x) {
  return backward_op<BinaryOp::AbsBackward>("abs_backward", grad, x);
}
Tensor gelu_backward(const Tensor& grad, const Tensor& x) {
  return backward_op<BinaryOp::GeluBackward>("gelu_backward", grad, x);
}
Tensor silu_backward(const Tensor& grad, const Tensor& x) {
  return backward_op<BinaryOp::SiluBackward>("silu_backward", grad, x);
}
Tensor softplus_backward(const Tensor& grad, const Tensor& x) {
  return backward_op<BinaryOp::SoftplusBackward>("softplus_backward", grad, x);
}

}  // namespace petal::ops
