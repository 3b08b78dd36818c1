// Moved to kernels/portable/math.hpp (namespace petal::kernels); this
// forwarding header keeps optimizer_body.hpp's unqualified math_* calls in
// petal::cuda compiling until it includes the new path.
#pragma once

#include "kernels/portable/math.hpp"

namespace petal::cuda {
using kernels::math_abs;
using kernels::math_exp;
using kernels::math_fmax;
using kernels::math_fmin;
using kernels::math_log;
using kernels::math_pow;
using kernels::math_sqrt;
using kernels::math_tanh;
}  // namespace petal::cuda
