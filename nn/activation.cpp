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
  throw ValueError(str_cat("unknown activation \"", name, "\" (expected linear, relu, relu6, sigmoid, tanh or softmax)"));
}

const char* activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::Linear: return "linear";
    case ActivationKind::Relu: return "relu";
    case ActivationKind::Relu6: return "relu6";
    case ActivationKind::Sigmoid: return "sigmoid";
    case ActivationKind::Tanh: return "tanh";
    case ActivationKind::Softmax: return "softmax";
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
  }
  return x;
}

}  // namespace petal::nn
