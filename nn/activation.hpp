// Activation functions by Keras name, used by Dense, Conv2D and Activation.
#pragma once

#include <cstdint>
#include <string_view>

#include "autograd/variable.hpp"

namespace petal::nn {

enum class ActivationKind { Linear, Relu, Relu6, Sigmoid, Tanh, Softmax, Gelu, Silu, Softplus, LeakyRelu, Elu };

// The activation a layer ending in `kind` leaves off in call_logits(): the
// ones a cross-entropy fuses with (Softmax, Sigmoid), else Linear (none).
constexpr ActivationKind logits_activation_of(ActivationKind kind) {
  return kind == ActivationKind::Softmax || kind == ActivationKind::Sigmoid ? kind : ActivationKind::Linear;
}

// Keras activation names: "linear" (or ""), "relu", "relu6", "sigmoid",
// "tanh", "softmax" (last axis), "gelu" (exact erf form, Keras's default
// approximate=False), "silu" (alias "swish"), "softplus", "leaky_relu"
// (keras.activations.leaky_relu: negative slope 0.2; the LeakyReLU layer's
// default is 0.3), "elu" (alpha 1); ValueError otherwise.
ActivationKind parse_activation(std::string_view name);
const char* activation_name(ActivationKind kind);
ag::Variable apply_activation(const ag::Variable& x, ActivationKind kind);

// Softmax over one axis of x (negative counts from the end): the last axis
// directly, any other by moving it last and back. IndexError outside the rank.
ag::Variable softmax_over_axis(const ag::Variable& x, std::int64_t axis);
// x for x > 0, alpha (exp(x) - 1) otherwise (Keras's elu), from relu and exp
// so it runs on every device.
ag::Variable elu(const ag::Variable& x, double alpha = 1.0);

// Lets layers take either a name or the enum: Dense(500, "relu").
struct ActivationSpec {
  ActivationKind kind = ActivationKind::Linear;
  ActivationSpec() = default;
  ActivationSpec(ActivationKind k) : kind(k) {}
  ActivationSpec(const char* name) : kind(parse_activation(name)) {}
  ActivationSpec(std::string_view name) : kind(parse_activation(name)) {}
};

}  // namespace petal::nn
