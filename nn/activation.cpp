#include "nn/activation.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

ActivationKind parse_activation(std::string_view name) {
  if (name.empty() || name == "linear") return ActivationKind::Linear;
  if (name == "relu") return ActivationKind::Relu;
  if (name == "relu6") return ActivationKind::Relu6;
  if (name == "sigmoid") return ActivationKind::Sigmoid;
  if (name == "tanh") return ActivationKind::Tanh;
  if (name == "softmax") return ActivationKind::Softmax;
  if (name == "gelu") return ActivationKind::Gelu;
  if (name == "silu" || name == "swish") return ActivationKind::Silu;
  if (name == "softplus") return ActivationKind::Softplus;
  if (name == "leaky_relu") return ActivationKind::LeakyRelu;
  if (name == "elu") return ActivationKind::Elu;
  throw ValueError(str_cat("unknown activation \"", name,
                           "\" (expected linear, relu, relu6, sigmoid, tanh, softmax, gelu, silu, swish, softplus, "
                           "leaky_relu or elu)"));
}

const char* activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::Linear: return "linear";
    case ActivationKind::Relu: return "relu";
    case ActivationKind::Relu6: return "relu6";
    case ActivationKind::Sigmoid: return "sigmoid";
    case ActivationKind::Tanh: return "tanh";
    case ActivationKind::Softmax: return "softmax";
    case ActivationKind::Gelu: return "gelu";
    case ActivationKind::Silu: return "silu";
    case ActivationKind::Softplus: return "softplus";
    case ActivationKind::LeakyRelu: return "leaky_relu";
    case ActivationKind::Elu: return "elu";
  }
  return "?";
}

ag::Variable apply_activation(const ag::Variable& x, ActivationKind kind) {
  switch (kind) {
    case ActivationKind::Linear: return x;
    case ActivationKind::Relu: return ag::relu(x);
    case ActivationKind::Relu6: return ag::relu6(x);
    case ActivationKind::Sigmoid: return ag::sigmoid(x);
    case ActivationKind::Tanh: return ag::tanh(x);
    case ActivationKind::Softmax: return ag::softmax(x);
    case ActivationKind::Gelu: return ag::gelu(x);
    case ActivationKind::Silu: return ag::silu(x);
    case ActivationKind::Softplus: return ag::softplus(x);
    case ActivationKind::LeakyRelu: return ag::leaky_relu(x, 0.2);
    case ActivationKind::Elu: return elu(x, 1.0);
  }
  return x;
}

ag::Variable softmax_over_axis(const ag::Variable& x, std::int64_t axis) {
  const std::int64_t rank = x.dim();
  const std::int64_t a = axis < 0 ? axis + rank : axis;
  PETAL_CHECK(a >= 0 && a < rank, IndexError, "softmax: axis ", axis, " is outside a tensor of rank ", rank);
  if (a == rank - 1) return ag::softmax(x);
  return ag::transpose(ag::softmax(ag::transpose(x, a, rank - 1)), a, rank - 1);
}

ag::Variable elu(const ag::Variable& x, double alpha) {
  // relu(x) + alpha (exp(min(x, 0)) - 1), with min(x, 0) = -relu(-x).
  ag::Variable negative_part = ag::add_scalar(ag::exp(ag::neg(ag::relu(ag::neg(x)))), -1.0);
  return ag::add(ag::relu(x), ag::mul_scalar(negative_part, alpha));
}

}  // namespace petal::nn
