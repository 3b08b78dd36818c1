#include "nn/activation_layers.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/activation.hpp"

namespace petal::nn {

LeakyReLU::LeakyReLU(double negative_slope, std::string name)
    : Module("LeakyReLU", "leaky_re_lu", std::move(name)), negative_slope_(negative_slope) {
  PETAL_CHECK(negative_slope >= 0.0, ValueError, "LeakyReLU \"", this->name(),
              "\": negative_slope must be >= 0, got ", negative_slope);
}

ag::Variable LeakyReLU::forward(const ag::Variable& x) { return ag::leaky_relu(x, negative_slope_); }

ELU::ELU(double alpha, std::string name) : Module("ELU", "elu", std::move(name)), alpha_(alpha) {}

ag::Variable ELU::forward(const ag::Variable& x) { return elu(x, alpha_); }

Softmax::Softmax(std::int64_t axis, std::string name) : Module("Softmax", "softmax", std::move(name)), axis_(axis) {}

ActivationKind Softmax::logits_activation() const {
  const bool last_axis = axis_ == -1 || (built() && axis_ == static_cast<std::int64_t>(input_shape().size()));
  return last_axis ? ActivationKind::Softmax : ActivationKind::Linear;
}

Shape Softmax::build_impl(const Shape& input_shape) {
  const auto rank = static_cast<std::int64_t>(input_shape.size()) + 1;  // with the batch axis
  const std::int64_t a = axis_ < 0 ? axis_ + rank : axis_;
  check_input(a >= 1 && a < rank, input_shape,
              str_cat("has no axis ", axis_, " other than the batch axis (rank ", rank, " with the batch)"));
  return input_shape;
}

ag::Variable Softmax::forward(const ag::Variable& x) { return softmax_over_axis(x, axis_); }
ag::Variable Softmax::forward_logits(const ag::Variable& x) {
  return logits_activation() == ActivationKind::Softmax ? x : forward(x);
}

}  // namespace petal::nn
