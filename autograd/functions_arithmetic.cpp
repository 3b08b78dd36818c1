// Differentiable arithmetic: broadcasting binary ops, scalar ops and matmul.
#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"

namespace petal::ag {

using detail::needs_grad;
using detail::reduce_to;

Variable add(const Variable& a, const Variable& b) {
  detail::check_defined(a, "add");
  detail::check_defined(b, "add");
  return make_op_result(ops::add(a.data(), b.data()), "add", {a, b},
                        [a_shape = a.shape(), b_shape = b.shape()](const Tensor& g) {
                          return std::vector<Tensor>{reduce_to(g, a_shape), reduce_to(g, b_shape)};
                        });
}

Variable sub(const Variable& a, const Variable& b) {
  detail::check_defined(a, "sub");
  detail::check_defined(b, "sub");
  return make_op_result(ops::sub(a.data(), b.data()), "sub", {a, b},
                        [a_shape = a.shape(), b_shape = b.shape(), need_b = needs_grad(b)](const Tensor& g) {
                          return std::vector<Tensor>{reduce_to(g, a_shape),
                                                     need_b ? ops::neg(reduce_to(g, b_shape)) : Tensor()};
                        });
}

Variable mul(const Variable& a, const Variable& b) {
  // Each input's gradient needs only the other input: save just that.
  const detail::CrossSaved saved = detail::save_each_for_the_other(a, b, "mul");
  return make_op_result(ops::mul(a.data(), b.data()), "mul", {a, b},
                        [saved, a_shape = a.shape(), b_shape = b.shape()](const Tensor& g) {
                          return std::vector<Tensor>{
                              saved.b.defined() ? reduce_to(ops::mul(g, saved.b), a_shape) : Tensor(),
                              saved.a.defined() ? reduce_to(ops::mul(g, saved.a), b_shape) : Tensor()};
                        });
}

Variable div(const Variable& a, const Variable& b) {
  detail::check_defined(a, "div");
  detail::check_defined(b, "div");
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  Tensor out = ops::div(a.data(), b.data());
  // d(a/b)/db = -(a/b)/b: the output stands in for a.
  Tensor saved_out = need_b ? out : Tensor();
  return make_op_result(out, "div", {a, b},
                        [saved_out, b = b.data(), need_a, a_shape = a.shape(), b_shape = b.shape()](const Tensor& g) {
                          Tensor grad_a = need_a ? reduce_to(ops::div(g, b), a_shape) : Tensor();
                          Tensor grad_b = saved_out.defined()
                                              ? ops::neg(reduce_to(ops::div(ops::mul(g, saved_out), b), b_shape))
                                              : Tensor();
                          return std::vector<Tensor>{grad_a, grad_b};
                        });
}

namespace {

// maximum (b chosen where b - a > 0) and minimum (b chosen where a - b > 0):
// the gradient goes to b where b was chosen, to a elsewhere (ties, NaN).
Variable select_binary(const Variable& a, const Variable& b, const char* op,
                       Tensor (*forward)(const Tensor&, const Tensor&), bool b_wins_when_greater) {
  detail::check_defined(a, op);
  detail::check_defined(b, op);
  return make_op_result(forward(a.data(), b.data()), op, {a, b},
                        [x = a.data(), y = b.data(), b_wins_when_greater, need_a = needs_grad(a),
                         need_b = needs_grad(b)](const Tensor& g) {
                          // grad * (margin > 0): the gradient where b was chosen (broadcast shape).
                          const Tensor margin = b_wins_when_greater ? ops::sub(y, x) : ops::sub(x, y);
                          const Tensor to_b = ops::relu_backward(g, margin);
                          return std::vector<Tensor>{need_a ? reduce_to(ops::sub(g, to_b), x.shape()) : Tensor(),
                                                     need_b ? reduce_to(to_b, y.shape()) : Tensor()};
                        });
}

}  // namespace

Variable maximum(const Variable& a, const Variable& b) { return select_binary(a, b, "maximum", &ops::maximum, true); }

Variable minimum(const Variable& a, const Variable& b) { return select_binary(a, b, "minimum", &ops::minimum, false); }

Variable neg(const Variable& a) {
  detail::check_defined(a, "neg");
  return make_op_result(ops::neg(a.data()), "neg", {a},
                        [](const Tensor& g) { return std::vector<Tensor>{ops::neg(g)}; });
}

Variable add_scalar(const Variable& a, double s) {
  detail::check_defined(a, "add_scalar");
  return make_op_result(ops::add_scalar(a.data(), s), "add_scalar", {a},
                        [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Variable mul_scalar(const Variable& a, double s) {
  detail::check_defined(a, "mul_scalar");
  return make_op_result(ops::mul_scalar(a.data(), s), "mul_scalar", {a},
                        [s](const Tensor& g) { return std::vector<Tensor>{ops::mul_scalar(g, s)}; });
}

Variable pow_scalar(const Variable& a, double exponent) {
  detail::check_defined(a, "pow_scalar");
  return make_op_result(ops::pow_scalar(a.data(), exponent), "pow_scalar", {a},
                        [x = a.data(), exponent](const Tensor& g) {
                          Tensor slope = ops::mul_scalar(ops::pow_scalar(x, exponent - 1.0), exponent);
                          return std::vector<Tensor>{ops::mul(g, slope)};
                        });
}

Variable pow(const Variable& a, const Variable& b) {
  detail::check_defined(a, "pow");
  detail::check_defined(b, "pow");
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  Tensor out = ops::pow(a.data(), b.data());
  return make_op_result(
      out, "pow", {a, b},
      [x = a.data(), e = b.data(), out = need_b ? out : Tensor(), need_a](const Tensor& g) {
        // d/da = b a^(b-1) (finite at a = 0 for b >= 1); d/db = a^b log(a) (NaN for a < 0).
        Tensor grad_a = need_a ? reduce_to(ops::mul(g, ops::mul(e, ops::pow(x, ops::add_scalar(e, -1.0)))), x.shape())
                               : Tensor();
        Tensor grad_b = out.defined() ? reduce_to(ops::mul(g, ops::mul(out, ops::log(x))), e.shape()) : Tensor();
        return std::vector<Tensor>{grad_a, grad_b};
      });
}

Variable matmul(const Variable& a, const Variable& b) {
  const detail::CrossSaved saved = detail::save_each_for_the_other(a, b, "matmul");
  // out = a @ b: grad_a = g @ b^T, grad_b = a^T @ g, per batch, each summed
  // over the batch axes its operand was broadcast along.
  return make_op_result(ops::matmul(a.data(), b.data()), "matmul", {a, b},
                        [saved, a_shape = a.shape(), b_shape = b.shape()](const Tensor& g) {
                          Tensor grad_a, grad_b;
                          if (saved.b.defined()) grad_a = reduce_to(ops::matmul(g, saved.b, false, true), a_shape);
                          if (saved.a.defined()) {
                            const Tensor& x = saved.a;
                            if (b_shape.size() == 2 && x.dim() > 2) {
                              // A shared weight under a batch: one GEMM over all rows.
                              const std::int64_t k = x.shape().back(), n = g.shape().back();
                              const std::int64_t rows = k == 0 ? 0 : x.numel() / k;
                              grad_b = ops::matmul(x.reshape({rows, k}), g.reshape({rows, n}), true, false);
                            } else {
                              grad_b = reduce_to(ops::matmul(x, g, true, false), b_shape);
                            }
                          }
                          return std::vector<Tensor>{grad_a, grad_b};
                        });
}

}  // namespace petal::ag
