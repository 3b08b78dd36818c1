// Helpers shared by the files that define differentiable ops (not installed).
#pragma once

#include "autograd/variable.hpp"
#include "kernels/ops.hpp"

namespace petal::ag::detail {

// Whether the op should compute a gradient for this input. Decided when the op
// runs forward, so backward skips work (e.g. the data batch of a first layer).
inline bool needs_grad(const Variable& v) { return v.defined() && v.requires_grad() && grad_enabled(); }

// Sums a broadcast gradient back to an input's shape (no copy when equal).
inline Tensor reduce_to(const Tensor& grad, const Shape& shape) {
  return grad.shape() == shape ? grad : ops::sum_to(grad, shape);
}

// Throws ValueError naming op when a Variable argument is undefined.
inline void check_defined(const Variable& v, const char* op) {
  PETAL_CHECK(v.defined(), ValueError, op, ": undefined variable argument");
}

}  // namespace petal::ag::detail
