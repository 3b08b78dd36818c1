// Differentiable elementwise functions and activations. Where the derivative
// can be written in terms of the output, the output is saved rather than the
// input: the next op usually keeps that tensor alive anyway.
#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"

namespace petal::ag {

// y > 0 exactly where x > 0, and 0 < y < 6 exactly where 0 < x < 6: the
// backward kernels take y in place of x.
Variable relu(const Variable& a) { return detail::output_saving_op(a, "relu", ops::relu, ops::relu_backward); }

Variable relu6(const Variable& a) { return detail::output_saving_op(a, "relu6", ops::relu6, ops::relu6_backward); }

Variable sigmoid(const Variable& a) {
  return detail::output_saving_op(a, "sigmoid", ops::sigmoid, ops::sigmoid_backward);
}

Variable tanh(const Variable& a) { return detail::output_saving_op(a, "tanh", ops::tanh, ops::tanh_backward); }

// d exp(x) = exp(x) dx
Variable exp(const Variable& a) { return detail::output_saving_op(a, "exp", ops::exp, ops::mul); }

Variable log(const Variable& a) {
  detail::check_defined(a, "log");
  return make_op_result(ops::log(a.data()), "log", {a},
                        [x = a.data()](const Tensor& g) { return std::vector<Tensor>{ops::div(g, x)}; });
}

Variable sqrt(const Variable& a) {
  detail::check_defined(a, "sqrt");
  Tensor y = ops::sqrt(a.data());
  // d sqrt(x) = 1 / (2 sqrt(x))
  return make_op_result(y, "sqrt", {a}, [y](const Tensor& g) {
    return std::vector<Tensor>{ops::div(ops::mul_scalar(g, 0.5), y)};
  });
}

}  // namespace petal::ag
