// Activation layers with parameters: LeakyReLU, ELU, Softmax(axis). The plain
// ones are Activation("gelu"), Activation("silu"), ... (core_layers.hpp) and
// ReLU (conv_layers.hpp). None has weights; the output shape is the input's.
#pragma once

#include <cstdint>
#include <string>

#include "nn/module.hpp"

namespace petal::nn {

// x for x >= 0, negative_slope * x otherwise (Keras default 0.3).
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.3, std::string name = "");
  double negative_slope() const { return negative_slope_; }

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override;

 private:
  double negative_slope_;
};

// x for x > 0, alpha (exp(x) - 1) otherwise (Keras default alpha 1.0).
class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0, std::string name = "");
  double alpha() const { return alpha_; }

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override;

 private:
  double alpha_;
};

// Softmax over `axis` (Keras's: it counts the batch axis, so -1 is the last
// and 1 the first after the batch; the batch axis itself is refused). With the
// last axis it ends in a softmax for the fused cross-entropy loss.
class Softmax : public Module {
 public:
  explicit Softmax(std::int64_t axis = -1, std::string name = "");
  std::int64_t axis() const { return axis_; }
  ActivationKind logits_activation() const override;

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;
  ag::Variable forward_logits(const ag::Variable& x) override;

 private:
  std::int64_t axis_;
};

}  // namespace petal::nn
