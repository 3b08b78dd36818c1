// Per-element definitions of the CUDA elementwise kernels (host and device):
// the same formulas as the CPU scalar paths in kernels/ops_elementwise.cpp.
#pragma once

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/device_math.hpp"
#include "kernels/cuda/host_device.hpp"

namespace petal::cuda {

template <class T>
PETAL_HD_INLINE T binary_body(cuda_ops::Binary op, T a, T b) {
  using cuda_ops::Binary;
  switch (op) {
    case Binary::Add: return a + b;
    case Binary::Sub: return a - b;
    case Binary::Mul: return a * b;
    case Binary::Div: return a / b;
    case Binary::Maximum: return a > b ? a : b;
    case Binary::Minimum: return a < b ? a : b;
    case Binary::ReluBackward: return b > T(0) ? a : T(0);
    case Binary::Relu6Backward: return (b > T(0) && b < T(6)) ? a : T(0);
    case Binary::SigmoidBackward: return a * b * (T(1) - b);
    case Binary::TanhBackward: return a * (T(1) - b * b);
  }
  return T(0);
}

template <class T>
PETAL_HD_INLINE T unary_body(cuda_ops::Unary op, T x) {
  using cuda_ops::Unary;
  switch (op) {
    case Unary::Neg: return -x;
    case Unary::Exp: return math_exp(x);
    case Unary::Log: return math_log(x);
    case Unary::Sqrt: return math_sqrt(x);
    case Unary::Abs: return math_abs(x);
    case Unary::Relu: return x > T(0) ? x : T(0);
    case Unary::Relu6: return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
    case Unary::Sigmoid: return T(1) / (T(1) + math_exp(-x));
    case Unary::Tanh: return math_tanh(x);
  }
  return x;
}

// x^exponent with the exact forms the CPU kernels use for 2, 0.5 and -1.
template <class T>
PETAL_HD_INLINE T pow_body(T x, T exponent) {
  if (exponent == T(2)) return x * x;
  if (exponent == T(0.5)) return math_sqrt(x);
  if (exponent == T(-1)) return T(1) / x;
  return math_pow(x, exponent);
}

template <class T>
PETAL_HD_INLINE T clamp_body(T x, T low, T high) {
  return x < low ? low : (x > high ? high : x);
}

// Clipping in place (ops::clamp_): fmin/fmax, so NaN becomes a bound, as
// gradient clipping by value always did.
template <class T>
PETAL_HD_INLINE T clip_body(T x, T low, T high) {
  return math_fmin(math_fmax(x, low), high);
}

}  // namespace petal::cuda
