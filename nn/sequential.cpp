#include "nn/sequential.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"

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
  plan_current_ = false;
  if (built()) {
    Shape previous = children().size() == 1 ? input_shape() : children()[children().size() - 2]->output_shape();
    layer->build(previous);
    update_output_shape(layer->output_shape());
    make_plan();
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
  make_plan();
  return shape;
}

void Sequential::set_fusion(bool enabled) {
  if (enabled == fusion_) return;
  fusion_ = enabled;
  plan_current_ = false;
  if (built()) make_plan();
}

void Sequential::make_plan() {
  const auto& layers = children();
  plan_.clear();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    FusionStep step;
    step.layer = layers[i].get();
    step.inputs = {static_cast<int>(i)};
    step.outputs = {static_cast<int>(i + 1)};
    plan_.push_back(std::move(step));
  }
  const int slots = static_cast<int>(layers.size()) + 1;
  if (fusion_) fuse_steps(plan_, {slots - 1}, slots);
  plan_current_ = true;
}

ag::Variable Sequential::run(const ag::Variable& x, bool logits) {
  if (!plan_current_) {
    make_plan();
    reset_batch_split();
  }
  return run_maybe_split(*this, {x}, [&](const std::vector<ag::Variable>& part) {
    return std::vector<ag::Variable>{run_plan(part[0], logits)};
  })[0];
}

ag::Variable Sequential::run_plan(const ag::Variable& x, bool logits) {
  ag::Variable y = x;
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    const FusionStep& step = plan_[i];
    if (step.kind != FusionStep::Kind::Call)
      y = run_fused_step(step, y);
    else
      y = (logits && i + 1 == plan_.size()) ? step.layer->call_logits(y) : (*step.layer)(y);
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
