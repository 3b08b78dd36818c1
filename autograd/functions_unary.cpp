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

namespace {

// y = forward(x), grad_x = backward(grad_y, x): the input is saved (the
// derivative of these is not a function of the output).
Variable input_saving_op(const Variable& a, const char* op, Tensor (*forward)(const Tensor&),
                         Tensor (*backward)(const Tensor& grad, const Tensor& x)) {
  detail::check_defined(a, op);
  return make_op_result(forward(a.data()), op, {a}, [x = a.data(), backward](const Tensor& g) {
    return std::vector<Tensor>{backward(g, x)};
  });
}

}  // namespace

// d|x| = sign(x) dx, 0 at the kink (like TensorFlow and PyTorch).
Variable abs(const Variable& a) { return input_saving_op(a, "abs", ops::abs, ops::abs_backward); }

Variable gelu(const Variable& a) { return input_saving_op(a, "gelu", ops::gelu, ops::gelu_backward); }

Variable silu(const Variable& a) { return input_saving_op(a, "silu", ops::silu, ops::silu_backward); }

Variable softplus(const Variable& a) { return input_saving_op(a, "softplus", ops::softplus, ops::softplus_backward); }

Variable leaky_relu(const Variable& a, double negative_slope) {
  detail::check_defined(a, "leaky_relu");
  Tensor y = ops::leaky_relu(a.data(), negative_slope);
  // y > 0 exactly where x > 0 for a positive slope; the input otherwise.
  Tensor saved = negative_slope > 0.0 ? y : a.data();
  return make_op_result(y, "leaky_relu", {a}, [saved, negative_slope](const Tensor& g) {
    // slope * g + (1 - slope) * g * (x > 0)
    Tensor grad = ops::mul_scalar(ops::relu_backward(g, saved), 1.0 - negative_slope);
    ops::add_(grad, g, negative_slope);
    return std::vector<Tensor>{grad};
  });
}

Variable clamp(const Variable& a, double low, double high) {
  detail::check_defined(a, "clamp");
  Tensor y = ops::clamp(a.data(), low, high);  // checks low <= high
  return make_op_result(y, "clamp", {a}, [x = a.data(), low, high](const Tensor& g) {
    // g where low <= x <= high (the bounds included, like PyTorch), 0 outside:
    // g - g * (x > high) - g * (x < low).
    Tensor grad = ops::sub(g, ops::relu_backward(g, ops::add_scalar(x, -high)));
    ops::add_(grad, ops::relu_backward(g, ops::add_scalar(ops::neg(x), low)), -1.0);
    return std::vector<Tensor>{grad};
  });
}

}  // namespace petal::ag
