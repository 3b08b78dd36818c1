#include "nn/core_layers.hpp"

#include "autograd/conv_functions.hpp"
#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

InputLayer::InputLayer(Shape shape, std::string name)
    : Module("InputLayer", "input_layer", std::move(name)), shape_(std::move(shape)) {
  for (std::int64_t d : shape_)
    PETAL_CHECK(d > 0, ShapeError, "Input \"", this->name(), "\": shape ", keras_shape_str(shape_),
                " needs positive sizes");
  set_input_shape(shape_);
}

std::vector<Shape> InputLayer::build_multi(const std::vector<Shape>& input_shapes) {
  PETAL_CHECK(input_shapes.size() <= 1, ValueError, "Input \"", name(), "\" takes at most one input, got ",
              input_shapes.size());
  return {shape_};
}

SymbolicTensor Input(Shape shape, std::string name) {
  auto input = std::make_shared<InputLayer>(std::move(shape), std::move(name));
  return input->call_symbolic({}).at(0);
}

Flatten::Flatten(std::string name) : Module("Flatten", "flatten", std::move(name)) {}
Flatten::Flatten(Shape input_shape, std::string name) : Flatten(std::move(name)) {
  set_input_shape(std::move(input_shape));
}

Shape Flatten::build_impl(const Shape& input_shape) { return {shape_numel(input_shape)}; }

ag::Variable Flatten::forward(const ag::Variable& x) { return ag::flatten(x, 1); }

Dense::Dense(std::int64_t units, ActivationSpec activation, DenseOptions options)
    : Module("Dense", "dense", options.name), units_(units), activation_(activation.kind), options_(std::move(options)) {
  PETAL_CHECK(units > 0, ValueError, "Dense \"", name(), "\": units must be positive, got ", units);
}

Shape Dense::build_impl(const Shape& input_shape) {
  check_input(!input_shape.empty(), input_shape, "needs at least one axis besides the batch");
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  const std::int64_t in = input_shape.back();
  kernel_ = add_parameter("kernel", options_.kernel_initializer({in, units_}, gen));
  if (options_.use_bias) bias_ = add_parameter("bias", options_.bias_initializer({units_}, gen));
  Shape out = input_shape;
  out.back() = units_;
  return out;
}

ag::Variable Dense::kernel_product(const ag::Variable& x) const {
  // Higher-rank inputs apply the kernel to the last axis (Keras semantics).
  ag::Variable flat = x.dim() == 2 ? x : ag::reshape(x, {-1, x.size(-1)});
  ag::Variable y = ag::matmul(flat, kernel_);
  if (x.dim() != 2) {
    Shape out = x.shape();
    out.back() = units_;
    y = ag::reshape(y, out);
  }
  return y;
}

ag::Variable Dense::forward_logits(const ag::Variable& x) {
  const ag::Variable y = kernel_product(x);
  return bias_.defined() ? ag::add(y, bias_) : y;
}

ag::Variable Dense::forward(const ag::Variable& x) { return apply_activation(forward_logits(x), activation_); }

Activation::Activation(ActivationSpec activation, std::string name)
    : Module("Activation", "activation", std::move(name)), activation_(activation.kind) {}

ag::Variable Activation::forward(const ag::Variable& x) { return apply_activation(x, activation_); }
ag::Variable Activation::forward_logits(const ag::Variable& x) {
  return logits_activation() != ActivationKind::Linear ? x : forward(x);
}

Dropout::Dropout(double rate, std::string name) : Module("Dropout", "dropout", std::move(name)), rate_(rate) {
  PETAL_CHECK(rate >= 0.0 && rate < 1.0, ValueError, "Dropout \"", this->name(), "\": rate must be in [0, 1), got ",
              rate);
}
Dropout::Dropout(double rate, std::uint64_t seed, std::string name) : Dropout(rate, std::move(name)) {
  own_generator_ = true;
  generator_.seed(seed);
}

ag::Variable Dropout::forward(const ag::Variable& x) {
  if (!training() || rate_ == 0.0) return x;
  return ag::dropout(x, rate_, true, own_generator_ ? generator_ : default_generator());
}

}  // namespace petal::nn
