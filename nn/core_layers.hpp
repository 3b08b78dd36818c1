// The basic Keras layers: InputLayer, Flatten, Dense, Activation, Dropout.
#pragma once

#include <cstdint>
#include <string>

#include "core/random.hpp"
#include "nn/activation.hpp"
#include "nn/initializers.hpp"
#include "nn/module.hpp"

namespace petal::nn {

// Declares a model's input shape (without the batch axis); identity. The
// first layer of a Sequential (not listed by its summary(), as in Keras), and
// the source of a functional model's symbolic inputs (nn::Input(shape)).
class InputLayer : public Module {
 public:
  explicit InputLayer(Shape shape, std::string name = "");
  const Shape& shape() const { return shape_; }

 protected:
  std::vector<Shape> build_multi(const std::vector<Shape>& input_shapes) override;
  ag::Variable forward(const ag::Variable& x) override { return x; }

 private:
  Shape shape_;
};

// [N, d1, d2, ...] -> [N, d1*d2*...].
class Flatten : public Module {
 public:
  explicit Flatten(std::string name = "");
  // Flatten(input_shape=[192, 192, 3]) as in the lab.
  explicit Flatten(Shape input_shape, std::string name = "");

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;
};

struct DenseOptions {
  bool use_bias = true;
  std::string name = "";
  Initializer kernel_initializer = glorot_uniform();
  Initializer bias_initializer = zeros_initializer();
  Generator* generator = nullptr;  // default_generator() when null
};

// y = activation(x @ kernel + bias) over the last axis; kernel [in, units].
class Dense : public Module {
 public:
  Dense(std::int64_t units, ActivationSpec activation = {}, DenseOptions options = {});

  std::int64_t units() const { return units_; }
  ActivationKind activation() const { return activation_; }
  const ag::Variable& kernel() const { return kernel_; }
  const ag::Variable& bias() const { return bias_; }  // undefined without use_bias
  ActivationKind logits_activation() const override { return logits_activation_of(activation_); }
  // x @ kernel over the last axis, without bias or activation (what a fused
  // Dense -> BatchNormalization chain runs; see nn/fusion.hpp).
  ag::Variable kernel_product(const ag::Variable& x) const;

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;
  ag::Variable forward_logits(const ag::Variable& x) override;

 private:
  std::int64_t units_;
  ActivationKind activation_;
  DenseOptions options_;
  ag::Variable kernel_, bias_;
};

class Activation : public Module {
 public:
  explicit Activation(ActivationSpec activation, std::string name = "");
  ActivationKind activation() const { return activation_; }
  ActivationKind logits_activation() const override { return logits_activation_of(activation_); }

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override;
  ag::Variable forward_logits(const ag::Variable& x) override;

 private:
  ActivationKind activation_;
};

// Inverted dropout, active only in training mode. Draws from its own
// generator when seeded, else from default_generator() (which checkpoints save).
class Dropout : public Module {
 public:
  explicit Dropout(double rate, std::string name = "");
  Dropout(double rate, std::uint64_t seed, std::string name = "");

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override;

 private:
  double rate_;
  bool own_generator_ = false;
  Generator generator_;
};

}  // namespace petal::nn
