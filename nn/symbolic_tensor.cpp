#include "nn/symbolic_tensor.hpp"

#include "core/error.hpp"
#include "nn/module.hpp"

namespace petal::nn {

SymbolicTensor::SymbolicTensor(std::shared_ptr<const Node> node, int output_index)
    : node_(std::move(node)), output_index_(output_index) {
  PETAL_CHECK(node_ != nullptr && output_index_ >= 0 &&
                  static_cast<std::size_t>(output_index_) < node_->output_shapes.size(),
              IndexError, "SymbolicTensor: output ", output_index_, " of a node that has ",
              node_ ? node_->output_shapes.size() : 0, " outputs");
}

const Shape& SymbolicTensor::shape() const {
  PETAL_CHECK(node_ != nullptr, ValueError, "SymbolicTensor: undefined");
  return node_->output_shapes[static_cast<std::size_t>(output_index_)];
}

Module& SymbolicTensor::layer() const {
  PETAL_CHECK(node_ != nullptr, ValueError, "SymbolicTensor: undefined");
  return *node_->layer;
}

std::string SymbolicTensor::str() const {
  return str_cat(layer().name(), "[", node_->call_index, "][", output_index_, "]");
}

}  // namespace petal::nn
