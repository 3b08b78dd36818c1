// Reverse-mode automatic differentiation: a Variable is a tensor that may
// require gradients; every differentiable op (autograd/functions.hpp) records
// a Node on the tape that knows how to send gradients to its inputs.
//
//   ag::Variable w(petal::normal({3, 2}, 0, 1), /*requires_grad=*/true);
//   ag::Variable loss = ag::sum(ag::relu(ag::matmul(x, w)));
//   loss.backward();          // w.grad() now holds d loss / d w
//
// Gradients accumulate across uses and across backward() calls until
// zero_grad(). backward() frees the graph's saved tensors unless retain_graph
// is set; a second backward() through a freed graph throws AutogradError.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace petal::ag {

class Node;

struct VariableImpl {
  Tensor data;
  Tensor grad;                   // undefined until a gradient arrives
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::string name;               // optional, for error messages
  std::function<void()> grad_ready_hook;  // leaves: see Variable::set_grad_ready_hook
};

class Variable {
 public:
  Variable() = default;  // undefined
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const;
  // Mutable access for in-place updates outside the tape (optimizers, loading).
  Tensor& mutable_data();
  // Replaces the value (same shape not required); keeps grad and flags.
  void set_data(Tensor data);

  bool requires_grad() const;
  void set_requires_grad(bool value);  // leaves only
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;

  const Tensor& grad() const;  // undefined tensor when no gradient yet
  bool has_grad() const;
  void set_grad(Tensor grad);
  void zero_grad();  // drops the gradient (undefined again)
  // Makes a non-leaf keep the gradient backward() passes through it in .grad
  // (accumulated like a leaf's), for debugging; a no-op on leaves. Costs one
  // gradient buffer per such variable for as long as it lives.
  void retain_grad();
  // Leaves only: called during backward() as soon as this leaf's gradient of
  // the pass is complete (every op of the graph that uses the leaf has sent
  // its part), while the rest of the backward pass still runs: data-parallel
  // training starts summing gradients across processes there. Not called for
  // a leaf the graph does not reach. An empty function removes the hook. The
  // hook must not hold this Variable (that would keep it alive forever).
  void set_grad_ready_hook(std::function<void()> hook);

  // Backpropagates from this scalar (numel 1): seed 1. Works in any grad mode.
  // When a backward function throws, the graph is left partly released and
  // leaves may hold partial gradients: zero_grad() them before retrying.
  // One thread at a time may backpropagate into the same leaves.
  void backward(bool retain_graph = false) const;
  // Backpropagates with an explicit seed gradient of this variable's shape.
  void backward(const Tensor& seed, bool retain_graph = false) const;

  // The same data, cut off from the tape (a new leaf, requires_grad false).
  Variable detach() const;

  // Shortcuts to the data.
  const Shape& shape() const { return data().shape(); }
  std::int64_t dim() const { return data().dim(); }
  std::int64_t size(std::int64_t axis) const { return data().size(axis); }
  std::int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }

  const std::string& name() const;
  Variable& set_name(std::string name);

  // Identity (same underlying variable).
  bool same(const Variable& other) const { return impl_ == other.impl_; }
  const std::shared_ptr<VariableImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<VariableImpl> impl_;
};

// Computes gradients of the inputs of one recorded op from the gradient of its
// output. Returns one tensor per input (undefined = no gradient for it), each
// shaped like its input (the engine throws AutogradError naming the op
// otherwise). grad_output is contiguous, has the output's shape, and must not
// be modified; returning it (or a view of it) as an input's gradient is fine.
// It runs with grad mode off.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class Node {
 public:
  Node(std::string op, std::vector<Variable> inputs, BackwardFn backward);
  // Unlinks the graph behind it iteratively: destroying a long chain of ops
  // must not recurse once per op.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  const std::string& op() const { return op_; }
  const std::vector<Variable>& inputs() const { return inputs_; }
  bool released() const { return released_; }
  // Runs the backward function; throws AutogradError when released.
  std::vector<Tensor> apply(const Tensor& grad_output);
  // The variable this node produced, when it asked to keep its gradient
  // (Variable::retain_grad); weak, so the node never keeps its output alive.
  void set_retained_output(std::weak_ptr<VariableImpl> output) { retained_output_ = std::move(output); }
  const std::weak_ptr<VariableImpl>& retained_output() const { return retained_output_; }
  // Drops the saved tensors (captured by the backward function) and the edges
  // to the inputs, so activations are freed as soon as backward passes them.
  // backward() calls it on every node it runs through unless retain_graph.
  void release();

 private:
  std::string op_;
  std::vector<Variable> inputs_;
  BackwardFn backward_;
  std::weak_ptr<VariableImpl> retained_output_;
  bool released_ = false;
};

// Builds an op's output: records a Node when grad mode is on and any input
// requires a gradient, otherwise returns a plain Variable. `backward` must
// return gradients shaped like the inputs. Undefined inputs are allowed (an
// absent bias) and receive no gradient.
//
// Gradients reach a leaf's .grad summed (across uses and across backward()
// calls); the first one is copied unless nothing else references it, so a leaf
// gradient never aliases another tensor the engine handed out.
Variable make_op_result(Tensor output, const char* op, std::vector<Variable> inputs, BackwardFn backward);

// ---- grad mode ----
bool grad_enabled();
// Disables recording for its lifetime (inference, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace petal::ag
