// Containers: Sequential (a stack of layers) and Residual (x + block(x), the
// Keras Add of MobileNetV2's inverted residual blocks). With them a model is
// written as in Keras:
//
//   Sequential model({std::make_shared<Flatten>(Shape{192, 192, 3}),
//                     std::make_shared<Dense>(500, "relu"),
//                     std::make_shared<Dense>(50, "relu"),
//                     std::make_shared<Dense>(5, "softmax")});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace petal::nn {

class Sequential : public Module {
 public:
  explicit Sequential(std::string name = "");
  // Builds at once when the first layer declares its input shape (or is an Input).
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers, std::string name = "");

  // Appends a layer; builds it at once when the model already knows its shapes.
  Sequential& add(std::shared_ptr<Module> layer);
  const std::vector<std::shared_ptr<Module>>& layers() const { return children(); }
  ActivationKind logits_activation() const override;

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override { return run(x, false); }
  ag::Variable forward_logits(const ag::Variable& x) override { return run(x, true); }

 private:
  // Runs the layers; a BatchNormalization followed by ReLU(6) runs fused.
  ag::Variable run(const ag::Variable& x, bool logits);
  void build_if_shape_known();
};

// out = x + block(x); block must keep the shape. Named like Keras's Add layer
// (e.g. "block_2_add"); the block's layers keep their own names.
class Residual : public Module {
 public:
  explicit Residual(std::shared_ptr<Module> block, std::string name = "");
  const std::shared_ptr<Module>& block() const { return children().front(); }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;
};

}  // namespace petal::nn
