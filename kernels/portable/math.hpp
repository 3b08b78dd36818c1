// Float and double overloads of the C math functions that exist on the host
// and (through CUDA's headers) on the device. On the host they are the
// functions std::exp and friends call, so CPU results do not depend on
// whether a formula spells std::exp or math_exp.
#pragma once

#include <math.h>

#include "kernels/portable/host_device.hpp"

namespace petal::kernels {

PETAL_HD_INLINE float math_exp(float x) { return ::expf(x); }
PETAL_HD_INLINE double math_exp(double x) { return ::exp(x); }
PETAL_HD_INLINE float math_log(float x) { return ::logf(x); }
PETAL_HD_INLINE double math_log(double x) { return ::log(x); }
PETAL_HD_INLINE float math_sqrt(float x) { return ::sqrtf(x); }
PETAL_HD_INLINE double math_sqrt(double x) { return ::sqrt(x); }
PETAL_HD_INLINE float math_abs(float x) { return ::fabsf(x); }
PETAL_HD_INLINE double math_abs(double x) { return ::fabs(x); }
PETAL_HD_INLINE float math_tanh(float x) { return ::tanhf(x); }
PETAL_HD_INLINE double math_tanh(double x) { return ::tanh(x); }
PETAL_HD_INLINE float math_pow(float x, float e) { return ::powf(x, e); }
PETAL_HD_INLINE double math_pow(double x, double e) { return ::pow(x, e); }
PETAL_HD_INLINE float math_erfc(float x) { return ::erfcf(x); }
PETAL_HD_INLINE double math_erfc(double x) { return ::erfc(x); }
PETAL_HD_INLINE float math_log1p(float x) { return ::log1pf(x); }
PETAL_HD_INLINE double math_log1p(double x) { return ::log1p(x); }
PETAL_HD_INLINE float math_fmin(float a, float b) { return ::fminf(a, b); }
PETAL_HD_INLINE double math_fmin(double a, double b) { return ::fmin(a, b); }
PETAL_HD_INLINE float math_fmax(float a, float b) { return ::fmaxf(a, b); }
PETAL_HD_INLINE double math_fmax(double a, double b) { return ::fmax(a, b); }

}  // namespace petal::kernels
