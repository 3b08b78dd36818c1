// The elementwise op family, defined once for every backend: the op enums
// and the per-element formula of each op (host and device). The CPU ops
// (kernels/ops_elementwise.cpp) run these formulas on float64 and strided
// runs, the CUDA kernels (kernels/cuda/elementwise.cu) on everything; the
// per-ISA float32 kernels (kernels/cpu/elementwise/elementwise_kernels.cpp)
// instantiate them on SIMD vectors where the formula is plain arithmetic
// and give a vector body of their own otherwise.
//
// Adding a binary op: a name before Count and a branch in binary_value here,
// a SimdBinary specialisation in the per-ISA kernels unless the formula is
// plain arithmetic, the Tensor-level function (kernels/ops.hpp, one line in
// ops_elementwise.cpp), its derivative in autograd, and a line in the tests.
#pragma once

#include "kernels/portable/host_device.hpp"
#include "kernels/portable/math.hpp"

namespace petal::kernels {

// Binary ops on operands broadcast to one shape. The fused activation
// backward helpers are binary ops too: (grad, saved activation).
enum class BinaryOp : int {
  Add,
  Sub,
  Mul,
  Div,
  Maximum,          // a > b ? a : b (NaN in a gives b)
  Minimum,          // a < b ? a : b
  ReluBackward,     // grad * (x > 0)
  Relu6Backward,    // grad * (0 < x < 6)
  SigmoidBackward,  // grad * y * (1 - y)
  TanhBackward,     // grad * (1 - y^2)
  Pow,              // a^b through pow (tensor ** tensor)
  AbsBackward,      // grad * sign(x) (0 at x = 0)
  GeluBackward,     // grad * (Phi(x) + x phi(x)), Phi the normal CDF, phi its density
  SiluBackward,     // grad * s (1 + x (1 - s)), s = sigmoid(x)
  SoftplusBackward, // grad * sigmoid(x)
  Count
};
inline constexpr int kBinaryOpCount = static_cast<int>(BinaryOp::Count);

// Square and Reciprocal have no Tensor-level op of their own: they are
// pow_scalar's exact forms for the exponents 2 and -1.
// Gelu is the exact (erf) form, Keras's gelu(approximate=False):
// x Phi(x) = 0.5 x erfc(-x / sqrt 2) (erfc keeps the negative tail accurate);
// Silu is x sigmoid(x); Softplus is the stable log1p(exp(-|x|)) + max(x, 0).
enum class UnaryOp : int {
  Neg, Exp, Log, Sqrt, Abs, Relu, Relu6, Sigmoid, Tanh, Square, Reciprocal, Gelu, Silu, Softplus, Count
};
inline constexpr int kUnaryOpCount = static_cast<int>(UnaryOp::Count);

// 1/sqrt(2) and 1/sqrt(2 pi), for GELU and its derivative.
inline constexpr double kSqrtHalf = 0.70710678118654752440;
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// T is float or double, or (for the branches that are plain arithmetic) a
// SIMD vector of floats.
template <BinaryOp kOp, class T>
PETAL_HD_INLINE T binary_value(T a, T b) {
  if constexpr (kOp == BinaryOp::Add) return a + b;
  else if constexpr (kOp == BinaryOp::Sub) return a - b;
  else if constexpr (kOp == BinaryOp::Mul) return a * b;
  else if constexpr (kOp == BinaryOp::Div) return a / b;
  else if constexpr (kOp == BinaryOp::Maximum) return a > b ? a : b;
  else if constexpr (kOp == BinaryOp::Minimum) return a < b ? a : b;
  else if constexpr (kOp == BinaryOp::ReluBackward) return b > T(0) ? a : T(0);
  else if constexpr (kOp == BinaryOp::Relu6Backward) return (b > T(0) && b < T(6)) ? a : T(0);
  else if constexpr (kOp == BinaryOp::SigmoidBackward) return a * b * (T(1) - b);
  else if constexpr (kOp == BinaryOp::TanhBackward) return a * (T(1) - b * b);
  else if constexpr (kOp == BinaryOp::Pow) return math_pow(a, b);
  else if constexpr (kOp == BinaryOp::AbsBackward) return b > T(0) ? a : (b < T(0) ? -a : T(0));
  else if constexpr (kOp == BinaryOp::GeluBackward)
    return a * (T(0.5) * math_erfc(-b * T(kSqrtHalf)) + b * math_exp(T(-0.5) * b * b) * T(kInvSqrt2Pi));
  else if constexpr (kOp == BinaryOp::SiluBackward) {
    const T s = T(1) / (T(1) + math_exp(-b));
    return a * s * (T(1) + b * (T(1) - s));
  } else {
    static_assert(kOp == BinaryOp::SoftplusBackward, "every op needs its formula here");
    return a / (T(1) + math_exp(-b));
  }
}

template <UnaryOp kOp, class T>
PETAL_HD_INLINE T unary_value(T x) {
  if constexpr (kOp == UnaryOp::Neg) return -x;
  else if constexpr (kOp == UnaryOp::Exp) return math_exp(x);
  else if constexpr (kOp == UnaryOp::Log) return math_log(x);
  else if constexpr (kOp == UnaryOp::Sqrt) return math_sqrt(x);
  else if constexpr (kOp == UnaryOp::Abs) return math_abs(x);
  else if constexpr (kOp == UnaryOp::Relu) return x > T(0) ? x : T(0);
  else if constexpr (kOp == UnaryOp::Relu6) return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
  // e^-x overflows to +inf for x < -88 (float), giving exactly 0.
  else if constexpr (kOp == UnaryOp::Sigmoid) return T(1) / (T(1) + math_exp(-x));
  else if constexpr (kOp == UnaryOp::Tanh) return math_tanh(x);
  else if constexpr (kOp == UnaryOp::Square) return x * x;
  else if constexpr (kOp == UnaryOp::Reciprocal) return T(1) / x;
  else if constexpr (kOp == UnaryOp::Gelu) return T(0.5) * x * math_erfc(-x * T(kSqrtHalf));
  else if constexpr (kOp == UnaryOp::Silu) return x / (T(1) + math_exp(-x));
  else {
    static_assert(kOp == UnaryOp::Softplus, "every op needs its formula here");
    return math_log1p(math_exp(-math_abs(x))) + (x > T(0) ? x : T(0));
  }
}

// ---- ops with scalar parameters ----

// x * scale + shift (add_scalar, mul_scalar).
template <class T>
PETAL_HD_INLINE T affine_value(T x, T scale, T shift) {
  return x * scale + shift;
}

// x * factor (mul_scalar_ in place).
template <class T>
PETAL_HD_INLINE T scale_value(T x, T factor) {
  return x * factor;
}

// y + alpha * x (add_ with alpha).
template <class T>
PETAL_HD_INLINE T axpy_value(T y, T alpha, T x) {
  return y + alpha * x;
}

// x^exponent through pow (the CPU path for float64 and strided runs).
template <class T>
PETAL_HD_INLINE T pow_value(T x, T exponent) {
  return math_pow(x, exponent);
}

// The unary op that is x^exponent in an exact form (2, 0.5, -1), or Count:
// the CPU float32 kernels and the CUDA kernels use it. It differs from pow
// in the sign of sqrt(-0) and for sqrt(-inf), and by an ulp at most elsewhere.
template <class T>
PETAL_HD_INLINE UnaryOp pow_exact_form(T exponent) {
  if (exponent == T(2)) return UnaryOp::Square;
  if (exponent == T(0.5)) return UnaryOp::Sqrt;
  if (exponent == T(-1)) return UnaryOp::Reciprocal;
  return UnaryOp::Count;
}

// x^exponent with the exact forms of pow_exact_form (the CUDA kernels).
template <class T>
PETAL_HD_INLINE T pow_exact_value(T x, T exponent) {
  switch (pow_exact_form(exponent)) {
    case UnaryOp::Square: return unary_value<UnaryOp::Square>(x);
    case UnaryOp::Sqrt: return unary_value<UnaryOp::Sqrt>(x);
    case UnaryOp::Reciprocal: return unary_value<UnaryOp::Reciprocal>(x);
    default: return pow_value(x, exponent);
  }
}

// leaky_relu: x for x > 0, alpha x elsewhere (NaN stays NaN).
template <class T>
PETAL_HD_INLINE T leaky_relu_value(T x, T alpha) {
  return x > T(0) ? x : alpha * x;
}

// clamp: NaN stays NaN.
template <class T>
PETAL_HD_INLINE T clamp_value(T x, T low, T high) {
  return x < low ? low : (x > high ? high : x);
}

// Clipping in place (clamp_): fmin/fmax, so NaN becomes a bound, as
// gradient clipping by value always did.
template <class T>
PETAL_HD_INLINE T clip_value(T x, T low, T high) {
  return math_fmin(math_fmax(x, low), high);
}

}  // namespace petal::kernels
