// nn::Module: the base of every layer and model, shaped like a Keras Layer.
//
// - Weights: named parameters (trainable Variables) and buffers (state such as
//   BatchNormalization's moving statistics, stored as Variables that never
//   require gradients). A weight's full name is "<layer name>/<weight name>",
//   e.g. "dense/kernel" or "block_1_expand_BN/moving_mean": containers add no
//   prefix, so names map 1:1 to Keras weight files.
// - Names: a layer without an explicit name gets Keras's automatic one from a
//   process-wide counter per base name (dense, dense_1, dense_2, ...);
//   reset_layer_names() starts the counters again (keras clear_session()).
// - Shape inference: shapes here exclude the batch axis. build(input_shape)
//   creates the weights and fixes output_shape(), so a model knows every
//   output shape before it sees data; calling an unbuilt module builds it from
//   its input.
// - Modes: training() (dropout active, BatchNormalization uses batch
//   statistics) and trainable() (a frozen layer's parameters get no gradients
//   and no optimizer updates). Both propagate to children when set.
// - Device: to(device) moves every weight (kernels/ops.hpp runs each op where
//   its operands live, so forward and backward follow); weights created later
//   (a lazy build, Sequential::add) are created there too.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/variable.hpp"
#include "core/tensor.hpp"

namespace petal::nn {

// Keras-style automatic layer names.
std::string unique_layer_name(std::string_view base);
void reset_layer_names();

// One weight seen from outside the module that owns it.
struct WeightRef {
  std::string name;       // full name, "dense/kernel"
  ag::Variable variable;  // shares the module's storage
  bool is_parameter;      // false for buffers (moving statistics)
  bool trainable;         // a parameter of a trainable layer
};

class Module {
 public:
  // `type_name` is the Keras class name shown by summary() ("Dense");
  // `base_name` is the automatic name's stem ("dense"); an empty `name` asks
  // for the automatic one.
  Module(std::string type_name, std::string_view base_name, std::string name);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& name() const { return name_; }
  const std::string& type_name() const { return type_name_; }

  // ---- shapes (without the batch axis) ----
  // Declares the input shape up front (Keras input_shape=...).
  void set_input_shape(Shape input_shape) { declared_input_shape_ = std::move(input_shape); }
  const std::optional<Shape>& declared_input_shape() const { return declared_input_shape_; }
  // Creates the weights for this input shape. Building again with the same
  // shape does nothing; a different shape is a ShapeError naming the layer.
  void build(const Shape& input_shape);
  bool built() const { return built_; }
  const Shape& input_shape() const;
  const Shape& output_shape() const;

  // ---- forward ----
  // Builds on first use from x's shape, checks the input shape, runs forward().
  ag::Variable operator()(const ag::Variable& x);
  // Whether the output is a softmax; then forward_logits() returns the values
  // before it, which the loss uses for a stable fused cross-entropy.
  virtual bool ends_in_softmax() const { return false; }
  ag::Variable call_logits(const ag::Variable& x);

  // ---- modes ----
  bool training() const { return training_; }
  virtual void set_training(bool training);
  void train() { set_training(true); }
  void eval() { set_training(false); }
  bool trainable() const { return trainable_; }
  virtual void set_trainable(bool trainable);

  // ---- structure and weights ----
  const std::vector<std::shared_ptr<Module>>& children() const { return children_; }
  // This module's and its descendants' weights, in creation order.
  std::vector<WeightRef> weights() const;
  std::vector<ag::Variable> trainable_parameters() const;
  std::int64_t count_params() const;
  std::int64_t count_trainable_params() const;
  std::int64_t count_non_trainable_params() const { return count_params() - count_trainable_params(); }
  // Drops the gradients of every parameter.
  void zero_grad();

  // ---- device ----
  // Moves every parameter and buffer, of this module and its descendants, to
  // `device`. The variables stay the same objects (layers and optimizers keep
  // their references), with the same names, trainable flags and requires_grad;
  // their gradients are dropped (even when nothing moves, so the result does
  // not depend on where the weights were). Later weights and added children
  // go to `device` too.
  void to(Device device);
  // Where the weights live: the device given to to(), else the first
  // weight's (a container over layers moved elsewhere), else the CPU.
  Device device() const;

  // Keras-like table: Layer (type), Output Shape, Param #, and the totals.
  // A container lists its children (a nested model is one row), a layer itself.
  std::string summary(int line_length = 65) const;

 protected:
  // Creates the weights for input_shape and returns the output shape.
  virtual Shape build_impl(const Shape& input_shape) = 0;
  virtual ag::Variable forward(const ag::Variable& x) = 0;
  virtual ag::Variable forward_logits(const ag::Variable& x) { return forward(x); }
  ag::Variable add_parameter(std::string local_name, Tensor initial);
  ag::Variable add_buffer(std::string local_name, Tensor initial);
  void add_child(std::shared_ptr<Module> child);
  // For containers that grow after being built (Sequential::add).
  void update_output_shape(Shape output_shape) { output_shape_ = std::move(output_shape); }
  // Throws ShapeError naming this layer unless `ok`.
  void check_input(bool ok, const Shape& input_shape, std::string_view expectation) const;

 private:
  // add_parameter (trainable per the layer, counted as a parameter) and
  // add_buffer (never trainable: batch norm's moving statistics).
  ag::Variable add_weight(std::string local_name, Tensor initial, bool is_parameter);

  struct LocalWeight {
    std::string name;
    ag::Variable variable;
    bool is_parameter;
  };

  std::string type_name_;
  std::string name_;
  std::optional<Shape> declared_input_shape_;
  bool built_ = false;
  Shape input_shape_, output_shape_;
  bool training_ = false;
  bool trainable_ = true;
  std::vector<LocalWeight> local_weights_;
  std::vector<std::shared_ptr<Module>> children_;
  std::optional<Device> device_;  // set by to()
};

// "(None, 6, 6, 1280)"
std::string keras_shape_str(const Shape& shape_without_batch);

}  // namespace petal::nn
