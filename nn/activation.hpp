// Activation functions by Keras name, used by Dense, Conv2D and Activation.
#pragma once

#include <string_view>

#include "autograd/variable.hpp"

namespace petal::nn {

enum class ActivationKind { Linear, Relu, Relu6, Sigmoid, Tanh, Softmax };

// "linear" (or ""), "relu", "relu6", "sigmoid", "tanh", "softmax"; ValueError otherwise.
ActivationKind parse_activation(std::string_view name);
const char* activation_name(ActivationKind kind);
ag::Variable apply_activation(const ag::Variable& x, ActivationKind kind);

// Lets layers take either a name or the enum: Dense(500, "relu").
struct ActivationSpec {
  ActivationKind kind = ActivationKind::Linear;
  ActivationSpec() = default;
  ActivationSpec(ActivationKind k) : kind(k) {}
  ActivationSpec(const char* name) : kind(parse_activation(name)) {}
  ActivationSpec(std::string_view name) : kind(parse_activation(name)) {}
};

}  // namespace petal::nn
