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

// A one-input op whose gradient is a function of its output alone (relu,
// sigmoid, softmax, exp, ...): y = forward(x), grad_x = backward(grad_y, y).
// The output is saved rather than the input: the next op usually keeps that
// tensor alive anyway.
inline Variable output_saving_op(const Variable& a, const char* op, Tensor (*forward)(const Tensor&),
                                 Tensor (*backward)(const Tensor& grad, const Tensor& y)) {
  check_defined(a, op);
  Tensor y = forward(a.data());
  return make_op_result(y, op, {a}, [y, backward](const Tensor& g) { return std::vector<Tensor>{backward(g, y)}; });
}

// For a binary op whose gradient for each input needs only the other input
// (mul, matmul): the inputs worth saving, each only when the other's gradient
// is needed (undefined otherwise).
struct CrossSaved {
  Tensor a;  // saved for b's gradient
  Tensor b;  // saved for a's gradient
};
inline CrossSaved save_each_for_the_other(const Variable& a, const Variable& b, const char* op) {
  check_defined(a, op);
  check_defined(b, op);
  return {needs_grad(b) ? a.data() : Tensor(), needs_grad(a) ? b.data() : Tensor()};
}

}  // namespace petal::ag::detail
