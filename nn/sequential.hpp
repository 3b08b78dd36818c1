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

#include "nn/batch_split.hpp"
#include "nn/fusion.hpp"
#include "nn/module.hpp"

namespace petal::nn {

// Inference batches split between threads: nn/batch_split.hpp (set_batch_split).
class Sequential : public Module, public BatchSplitting {
 public:
  explicit Sequential(std::string name = "");
  // Builds at once when the first layer declares its input shape (or is an Input).
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers, std::string name = "");

  // Appends a layer; builds it at once when the model already knows its shapes.
  Sequential& add(std::shared_ptr<Module> layer);
  const std::vector<std::shared_ptr<Module>>& layers() const { return children(); }
  ActivationKind logits_activation() const override;
  // The layers run as a plan in which every Conv2D / DepthwiseConv2D / Dense
  // -> BatchNormalization (-> ReLU / ReLU6) chain is one fused op
  // (nn/fusion.hpp). Fusion of this model's own layers (nested models keep
  // theirs; nn::set_fusion sets the whole tree): on by default.
  void set_fusion(bool enabled);
  bool fusion() const { return fusion_; }
  // The fused steps of the plan (empty until the model is built).
  std::vector<std::string> fused_steps() const { return fused_step_descriptions(plan_); }
  // The inverted-residual blocks among them (nn/fusion.hpp).
  std::vector<std::string> fused_blocks() const { return fused_block_descriptions(plan_); }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override { return run(x, false); }
  ag::Variable forward_logits(const ag::Variable& x) override { return run(x, true); }

 private:
  ag::Variable run(const ag::Variable& x, bool logits);
  ag::Variable run_plan(const ag::Variable& x, bool logits);
  void build_if_shape_known();
  // Step i reads value slot i and writes slot i + 1; then fuse_steps.
  void make_plan();

  std::vector<FusionStep> plan_;
  bool plan_current_ = false;  // plan_ made from the current layers and fusion_
  bool fusion_ = true;
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
