// nn::Model: a functional model, Keras's Model(inputs, outputs), over any
// directed acyclic graph of layer calls on symbolic tensors: several inputs
// and outputs, layers shared between calls (one set of weights), merges.
//
//   auto left = nn::Input({8}, "left"), right = nn::Input({8}, "right");
//   auto shared = nn::layer<Dense>(16, "relu");
//   auto merged = nn::layer<Concatenate>()({shared(left), shared(right)});
//   auto score = nn::layer<Dense>(1, "sigmoid", DenseOptions{.name = "score"})(merged);
//   auto model = std::make_shared<nn::Model>(std::vector{left, right}, std::vector{score}, "siamese");
//
// The model is built at construction (every shape is known from the
// inputs). Its children() are its layers, each once, in the order the graph
// runs them (inputs first), as Keras's model.layers. Calling it runs the
// graph eagerly; calling it on symbolic tensors nests it in another model.
// Trainer (compile/fit/evaluate/predict), save_weights/load_weights and
// summary() work on it as on Sequential; Trainer needs one input and one
// output, a custom loop on the tape takes any number.
//
// Speed: the model runs a plan of its layer calls in which every
// Conv2D / DepthwiseConv2D / Dense -> BatchNormalization (-> ReLU / ReLU6)
// chain is one fused op (nn/fusion.hpp: which chains, and when a layer is
// left alone); fused_steps() lists them, fused_blocks() the inverted-residual
// blocks run as one op in inference, set_fusion(false) runs every layer
// on its own. The results equal the unfused layers' within float rounding.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nn/batch_split.hpp"
#include "nn/fusion.hpp"
#include "nn/module.hpp"
#include "nn/symbolic_tensor.hpp"

namespace petal::nn {

// Inference batches split between threads: nn/batch_split.hpp (set_batch_split).
class Model : public Module, public BatchSplitting {
 public:
  Model(std::vector<SymbolicTensor> inputs, std::vector<SymbolicTensor> outputs, std::string name = "");
  Model(const SymbolicTensor& input, const SymbolicTensor& output, std::string name = "");

  const std::vector<SymbolicTensor>& inputs() const { return inputs_; }
  const std::vector<SymbolicTensor>& outputs() const { return outputs_; }
  // Every layer call, in an order that runs (each node after its inputs);
  // the inputs' nodes included.
  const std::vector<std::shared_ptr<const Node>>& nodes() const { return nodes_; }
  // The layer named `name`, or whose structural key is `name` (see
  // nn/module.hpp); ValueError listing the names when none is.
  std::shared_ptr<Module> get_layer(std::string_view name) const;
  ActivationKind logits_activation() const override;
  // Keras's table with the "Connected to" column.
  std::string summary() const override;
  // Fusion of this model's own layer calls (nested models keep theirs; see
  // nn::set_fusion for the whole tree): on by default.
  void set_fusion(bool enabled);
  bool fusion() const { return fusion_; }
  // The fused steps of the plan, e.g. "conv -> bn -> relu: conv2d_batch_norm + relu".
  std::vector<std::string> fused_steps() const { return fused_step_descriptions(steps_); }
  std::vector<std::string> fused_blocks() const { return fused_block_descriptions(steps_); }

 protected:
  std::vector<Shape> build_multi(const std::vector<Shape>& input_shapes) override;
  ag::Variable forward(const ag::Variable& x) override;
  ag::Variable forward_logits(const ag::Variable& x) override;
  std::vector<ag::Variable> forward_multi(const std::vector<ag::Variable>& inputs) override;

 private:
  void compile_graph();
  void make_plan();
  std::vector<ag::Variable> run(const std::vector<ag::Variable>& inputs, bool logits);
  std::vector<ag::Variable> run_plan(const std::vector<ag::Variable>& inputs, bool logits);

  std::vector<SymbolicTensor> inputs_, outputs_;
  std::vector<std::shared_ptr<const Node>> nodes_;  // topological order
  std::vector<FusionStep> calls_;  // one step per layer call
  std::vector<FusionStep> steps_;  // the plan that runs: calls_ fused (when fusion_)
  bool fusion_ = true;
  std::vector<int> input_slots_, output_slots_;
  int slot_count_ = 0;
};

}  // namespace petal::nn
