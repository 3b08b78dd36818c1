// nn::Module: the base of every layer and model, shaped like a Keras Layer.
//
// - Weights: named parameters (trainable Variables) and buffers (state such as
//   BatchNormalization's moving statistics, stored as Variables that never
//   require gradients). Each weight has two names:
//     * its display name "<layer name>/<weight name>" ("dense_3/kernel",
//       "block_1_expand_BN/moving_mean"), the Keras 2 name that Keras HDF5
//       files and summaries use;
//     * its structural path inside the model it is read from: the keys of
//       the containers on the way down, then the weight ("dense_1/kernel",
//       "mobilenetv2_1.00_192/Conv1/kernel"). A child's key is its name when
//       the name was given (or fixed by its model, as MobileNetV2's are), else
//       its base name made unique among its siblings in order (dense,
//       dense_1, ...), as Keras 3 .weights.h5 files do. Saving and loading use
//       paths, so any number of instances of a model in one process read each
//       other's files.
// - Names: a layer without an explicit name gets Keras's automatic display
//   name from a process-wide counter per base name (dense, dense_1, ...);
//   reset_layer_names() starts the counters again (keras clear_session()).
//   Nothing saved depends on these counters.
// - Shape inference: shapes here exclude the batch axis. A layer builds (makes
//   its weights, fixes its output shapes) when it is first called, eagerly or
//   on symbolic tensors, or when build() is given its input shapes. A module
//   that does not override build_impl (a custom module whose children are
//   declared in its constructor) learns its output shape by running forward:
//   on the first eager call, or on a zero batch of one sample (inference mode,
//   no gradient) when it is first called symbolically.
// - Modes: training() (dropout active, BatchNormalization uses batch
//   statistics) and trainable() (a frozen layer's parameters get no gradients
//   and no optimizer updates). Both propagate to children when set. A call may
//   pass `training` explicitly (Keras's call(x, training=...)): it then holds
//   for that call and every layer the call reaches, whatever their own flags.
//   New modules start in inference mode; Trainer::fit runs in training mode,
//   evaluate and predict in inference mode.
// - Device: to(device) moves every weight (kernels/ops.hpp runs each op where
//   its operands live, so forward and backward follow); weights created later
//   (a lazy build, Sequential::add) are created there too.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"
#include "core/tensor.hpp"
#include "nn/activation.hpp"
#include "nn/symbolic_tensor.hpp"

namespace petal::nn {

// Keras-style automatic layer names.
std::string unique_layer_name(std::string_view base);
// Keras's to_snake_case of a class name: "GlobalAveragePooling2D" ->
// "global_average_pooling2d", "ReLU" -> "re_lu".
std::string snake_case(std::string_view class_name);
void reset_layer_names();

// One row of summary(); connected_to is filled for functional models.
struct SummaryRow {
  std::string layer;  // "dense (Dense)"
  std::string output_shape;
  std::string params;
  std::vector<std::string> connected_to;
};

// One weight seen from outside the module that owns it.
struct WeightRef {
  std::string name;       // display name, "dense/kernel"
  std::string path;       // structural path from the module asked, "dense_1/kernel"
  ag::Variable variable;  // shares the module's storage
  bool is_parameter;      // false for buffers (moving statistics)
  bool trainable;         // a parameter of a trainable layer
};

// While alive, every module call on this thread runs in this mode (nullopt:
// each module's own flag), unless a call passes `training` itself. Module
// calls with an explicit `training` open one.
class TrainingScope {
 public:
  explicit TrainingScope(std::optional<bool> training);
  ~TrainingScope();
  TrainingScope(const TrainingScope&) = delete;
  TrainingScope& operator=(const TrainingScope&) = delete;
  // The mode of the innermost scope on this thread, if any.
  static std::optional<bool> current();

 private:
  std::optional<bool> previous_;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  // `type_name` is the Keras class name shown by summary() ("Dense");
  // `base_name` is the automatic name's stem ("dense"); an empty `name` asks
  // for the automatic one.
  Module(std::string type_name, std::string_view base_name, std::string name);
  // The same with Keras's base name for a class: `type_name` in snake case
  // ("SmallConvNet" -> "small_conv_net"). What a subclass usually calls:
  //   explicit MyBlock(std::string name = "") : Module("MyBlock", std::move(name)) {}
  explicit Module(std::string type_name, std::string name = "");
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& name() const { return name_; }
  const std::string& type_name() const { return type_name_; }
  const std::string& base_name() const { return base_name_; }
  // Whether name() came from the process-wide counter.
  bool has_automatic_name() const { return automatic_name_; }

  // ---- shapes (without the batch axis) ----
  // Declares the input shape up front (Keras input_shape=...).
  void set_input_shape(Shape input_shape) { declared_input_shape_ = std::move(input_shape); }
  const std::optional<Shape>& declared_input_shape() const { return declared_input_shape_; }
  // Creates the weights for these input shapes. Building again with the same
  // shapes does nothing; different shapes are a ShapeError naming the layer.
  void build(const Shape& input_shape);
  void build_for(const std::vector<Shape>& input_shapes);
  bool built() const { return built_; }
  // The shapes of a one-input, one-output layer (ShapeError otherwise).
  const Shape& input_shape() const;
  const Shape& output_shape() const;
  const std::vector<Shape>& input_shapes() const;
  // Known once built, except for a module that learns them by running
  // forward (see the top of this file): empty until its first call.
  const std::vector<Shape>& output_shapes() const;

  // ---- eager calls ----
  // Builds on first use from the inputs' shapes, checks them, runs forward.
  // `training` set: this call and every layer it reaches run in that mode.
  ag::Variable operator()(const ag::Variable& x, std::optional<bool> training = std::nullopt);
  std::vector<ag::Variable> operator()(const std::vector<ag::Variable>& inputs,
                                       std::optional<bool> training = std::nullopt);
  // The final activation call_logits() leaves off: Softmax or Sigmoid, whose
  // inputs (the logits) give the losses a stable fused cross-entropy; Linear
  // when call_logits() is the plain call.
  virtual ActivationKind logits_activation() const { return ActivationKind::Linear; }
  ag::Variable call_logits(const ag::Variable& x, std::optional<bool> training = std::nullopt);

  // ---- symbolic calls (functional models) ----
  // Records this layer's call on symbolic tensors and returns its output (a
  // layer with several outputs: call_symbolic). The layer must be owned by a
  // std::shared_ptr (nn::layer<T>(...) or std::make_shared).
  SymbolicTensor operator()(const SymbolicTensor& x);
  SymbolicTensor operator()(const std::vector<SymbolicTensor>& inputs);
  std::vector<SymbolicTensor> call_symbolic(const std::vector<SymbolicTensor>& inputs);

  // ---- modes ----
  // The mode a call runs in now: the innermost TrainingScope's, else the flag.
  bool training() const;
  virtual void set_training(bool training);
  void train() { set_training(true); }
  void eval() { set_training(false); }
  bool trainable() const { return trainable_; }
  virtual void set_trainable(bool trainable);

  // ---- structure and weights ----
  const std::vector<std::shared_ptr<Module>>& children() const { return children_; }
  // The key of each child in structural paths, in children() order.
  std::vector<std::string> child_keys() const;
  // This module's and its descendants' weights, in creation order, with
  // paths relative to this module.
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

  // Keras-like table: Layer (type), Output Shape, Param # (and Connected to
  // for a functional model), then the totals; columns widen to fit. A
  // container lists its children (a nested model is one row), a layer itself.
  virtual std::string summary() const;
  // This module as one row of its container's summary.
  SummaryRow summary_row() const;

 protected:
  // Creates the weights for input_shape and returns the output shape. The
  // default makes no weights and learns the output shape by running forward
  // (see the top of this file).
  virtual Shape build_impl(const Shape& input_shape);
  // For layers with several inputs or outputs; the default requires one
  // input and calls build_impl.
  virtual std::vector<Shape> build_multi(const std::vector<Shape>& input_shapes);
  virtual ag::Variable forward(const ag::Variable& x);
  virtual ag::Variable forward_logits(const ag::Variable& x) { return forward(x); }
  // The default requires one input and calls forward.
  virtual std::vector<ag::Variable> forward_multi(const std::vector<ag::Variable>& inputs);

  ag::Variable add_parameter(std::string local_name, Tensor initial);
  ag::Variable add_buffer(std::string local_name, Tensor initial);
  // Declares a child (in the constructor, or while building): its weights
  // belong to this module, its mode and device follow this module's. Returns
  // the child, so a subclass can keep the typed pointer:
  //   conv_ = add_child(nn::layer<Conv2D>(16, 3));
  template <class T>
  std::shared_ptr<T> add_child(std::shared_ptr<T> child) {
    add_child_module(child);
    return child;
  }
  // For containers that grow after being built (Sequential::add).
  void update_output_shape(Shape output_shape) { output_shapes_ = {std::move(output_shape)}; }
  // Throws ShapeError naming this layer unless `ok`.
  void check_input(bool ok, const Shape& input_shape, std::string_view expectation) const;
  // The table around `rows`, with this module's name and parameter counts.
  std::string summary_table(const std::vector<SummaryRow>& rows, bool connections) const;

 private:
  // add_parameter (trainable per the layer, counted as a parameter) and
  // add_buffer (never trainable: batch norm's moving statistics).
  ag::Variable add_weight(std::string local_name, Tensor initial, bool is_parameter);
  void add_child_module(std::shared_ptr<Module> child);
  bool contains(const Module* other) const;
  void collect_weights(const std::string& prefix, std::vector<WeightRef>& out) const;
  std::vector<ag::Variable> run(const std::vector<ag::Variable>& inputs, std::optional<bool> training, bool logits);
  // Runs forward on zeros of one sample to learn the output shapes.
  void infer_output_shapes();

  struct LocalWeight {
    std::string name;
    ag::Variable variable;
    bool is_parameter;
  };

  std::string type_name_;
  std::string base_name_;
  std::string name_;
  bool automatic_name_ = false;
  std::optional<Shape> declared_input_shape_;
  bool built_ = false;
  bool output_shapes_from_forward_ = false;  // build_impl was not overridden
  std::vector<Shape> input_shapes_, output_shapes_;
  bool training_ = false;
  bool trainable_ = true;
  int symbolic_calls_ = 0;
  std::vector<LocalWeight> local_weights_;
  std::vector<std::shared_ptr<Module>> children_;
  std::optional<Device> device_;  // set by to()
};

// Makes a layer owned by a shared pointer that can be called like the layer:
//   auto x = nn::layer<Dense>(64, "relu")(inputs);        // symbolic
//   auto shared = nn::layer<Dense>(8); shared(a); shared(b);  // one layer, two calls
template <class T>
class LayerPtr : public std::shared_ptr<T> {
 public:
  LayerPtr() = default;
  LayerPtr(std::shared_ptr<T> p) : std::shared_ptr<T>(std::move(p)) {}
  template <class Arg>
  decltype(auto) operator()(Arg&& arg) const {
    return (**this)(std::forward<Arg>(arg));
  }
  SymbolicTensor operator()(const std::vector<SymbolicTensor>& inputs) const { return (**this)(inputs); }
  std::vector<ag::Variable> operator()(const std::vector<ag::Variable>& inputs) const { return (**this)(inputs); }
  ag::Variable operator()(const ag::Variable& x, std::optional<bool> training) const { return (**this)(x, training); }
};

template <class T, class... Args>
LayerPtr<T> layer(Args&&... args) {
  return LayerPtr<T>(std::make_shared<T>(std::forward<Args>(args)...));
}

// "(None, 6, 6, 1280)"
std::string keras_shape_str(const Shape& shape_without_batch);

}  // namespace petal::nn
