// Differentiable elementwise functions and activations. Where the derivative
// can be written in terms of the output, the output is saved rather than the
// input: the next op usually keeps that tensor alive anyway.
#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"

namespace petal::ag {

Variable relu(const Variable& a) {
  detail::check_defined(a, "relu");
  Tensor y = ops::relu(a.data());
  // y > 0 exactly where x > 0.
  return make_op_result(y, "relu", {a},
                        [y](const Tensor& g) { return std::vector<Tensor>{ops::relu_backward(g, y)}; });
}

Variable relu6(const Variable& a) {
  detail::check_defined(a, "relu6");
  Tensor y = ops::relu6(a.data());
  // 0 < y < 6 exactly where 0 < x < 6.
  return make_op_result(y, "relu6", {a},
                        [y](const Tensor& g) { return std::vector<Tensor>{ops::relu6_backward(g, y)}; });
}

Variable sigmoid(const Variable& a) {
  detail::check_defined(a, "sigmoid");
  Tensor y = ops::sigmoid(a.data());
  return make_op_result(y, "sigmoid", {a},
                        [y](const Tensor& g) { return std::vector<Tensor>{ops::sigmoid_backward(g, y)}; });
}

Variable tanh(const Variable& a) {
  detail::check_defined(a, "tanh");
  Tensor y = ops::tanh(a.data());
  return make_op_result(y, "tanh", {a},
                        [y](const Tensor& g) { return std::vector<Tensor>{ops::tanh_backward(g, y)}; });
}

Variable exp(const Variable& a) {
  detail::check_defined(a, "exp");
  Tensor y = ops::exp(a.data());
  return make_op_result(y, "exp", {a}, [y](const Tensor& g) { return std::vector<Tensor>{ops::mul(g, y)}; });
}

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
