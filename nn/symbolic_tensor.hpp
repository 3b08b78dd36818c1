// Symbolic tensors: the edges of a functional model's graph (Keras's
// KerasTensor). nn::Input(shape) makes one; calling a layer on symbolic
// tensors records a Node (the layer, its inputs, its output shapes) and
// returns the node's outputs, so a model is written as in Keras:
//
//   auto image = nn::Input({32, 32, 3}, "image");
//   auto x = nn::layer<Conv2D>(16, 3)(image);
//   auto y = nn::layer<Dense>(10, "softmax")(nn::layer<Flatten>()(x));
//   nn::Model model({image}, {y}, "classifier");
//
// A symbolic tensor carries no data: its shape excludes the batch axis, and
// it keeps the nodes it comes from alive (graphs are immutable, so they
// cannot hold a cycle).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/shape.hpp"

namespace petal::nn {

class Module;
class SymbolicTensor;

// One call of a layer on symbolic tensors.
struct Node {
  std::shared_ptr<Module> layer;
  std::vector<SymbolicTensor> inputs;  // empty for an Input
  std::vector<Shape> output_shapes;    // without the batch axis
  int call_index = 0;                  // the how-manieth symbolic call of `layer` (shared layers)
};

class SymbolicTensor {
 public:
  SymbolicTensor() = default;
  SymbolicTensor(std::shared_ptr<const Node> node, int output_index);

  bool defined() const { return node_ != nullptr; }
  // Without the batch axis.
  const Shape& shape() const;
  const std::shared_ptr<const Node>& node() const { return node_; }
  int output_index() const { return output_index_; }
  Module& layer() const;
  // Keras's "Connected to" form: "dense[0][0]" (layer, call, output).
  std::string str() const;

  friend bool operator==(const SymbolicTensor& a, const SymbolicTensor& b) {
    return a.node_ == b.node_ && a.output_index_ == b.output_index_;
  }

 private:
  std::shared_ptr<const Node> node_;
  int output_index_ = 0;
};

// A symbolic input of `shape` (without the batch axis), made by an
// InputLayer named `name` ("input_layer", "input_layer_1", ... when empty).
SymbolicTensor Input(Shape shape, std::string name = "");

}  // namespace petal::nn
