#include "nn/sequential.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/conv_layers.hpp"

namespace petal::nn {

Sequential::Sequential(std::string name) : Module("Sequential", "sequential", std::move(name)) {}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers, std::string name) : Sequential(std::move(name)) {
  for (auto& layer : layers) {
    PETAL_CHECK(layer != nullptr, ValueError, "Sequential \"", this->name(), "\": null layer");
    add_child(std::move(layer));
  }
  build_if_shape_known();
}

void Sequential::build_if_shape_known() {
  if (built() || children().empty()) return;
  // The first layer's declared input shape becomes the model's, so a model
  // nested in another Sequential lets that one build too.
  const auto first = children().front()->declared_input_shape();
  if (!first) return;
  set_input_shape(*first);
  build(*first);
}

Sequential& Sequential::add(std::shared_ptr<Module> layer) {
  PETAL_CHECK(layer != nullptr, ValueError, "Sequential \"", name(), "\": null layer");
  add_child(layer);
  if (built()) {
    Shape previous = children().size() == 1 ? input_shape() : children()[children().size() - 2]->output_shape();
    layer->build(previous);
    update_output_shape(layer->output_shape());
  } else {
    build_if_shape_known();
  }
  return *this;
}

ActivationKind Sequential::logits_activation() const {
  return children().empty() ? ActivationKind::Linear : children().back()->logits_activation();
}

Shape Sequential::build_impl(const Shape& input_shape) {
  Shape shape = input_shape;
  for (const auto& layer : children()) {
    layer->build(shape);
    shape = layer->output_shape();
  }
  return shape;
}

ag::Variable Sequential::run(const ag::Variable& x, bool logits) {
  const auto& layers = children();
  ag::Variable y = x;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const bool last = i + 1 == layers.size();
    if (i + 1 < layers.size()) {
      auto* bn = dynamic_cast<BatchNormalization*>(layers[i].get());
      auto* relu = dynamic_cast<ReLU*>(layers[i + 1].get());
      if (bn && relu && relu->is_relu6()) {
        y = bn->forward_relu6(y);
        relu->build(bn->output_shape());
        ++i;
        continue;
      }
    }
    y = (last && logits) ? layers[i]->call_logits(y) : (*layers[i])(y);
  }
  return y;
}

Residual::Residual(std::shared_ptr<Module> block, std::string name) : Module("Add", "add", std::move(name)) {
  add_child(std::move(block));
}

Shape Residual::build_impl(const Shape& input_shape) {
  block()->build(input_shape);
  check_input(block()->output_shape() == input_shape, input_shape,
              str_cat("differs from its block's output ", keras_shape_str(block()->output_shape()),
                      ": a residual add needs equal shapes"));
  return input_shape;
}

ag::Variable Residual::forward(const ag::Variable& x) { return ag::add(x, (*block())(x)); }

}  // namespace petal::nn
