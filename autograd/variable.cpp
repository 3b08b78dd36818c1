// The tape: Variable bookkeeping, grad mode, and the backward engine.
#include "autograd/variable.hpp"

#include <unordered_map>
#include <utility>

#include "kernels/ops.hpp"

namespace petal::ag {

namespace {

thread_local bool t_grad_enabled = true;

VariableImpl& checked_impl(const std::shared_ptr<VariableImpl>& impl, const char* what) {
  PETAL_CHECK(impl != nullptr, ValueError, "Variable::", what, ": the variable is undefined");
  return *impl;
}

std::string describe(const VariableImpl& v) {
  return v.name.empty() ? std::string("variable") : str_cat("variable '", v.name, "'");
}

// True when nothing else can observe `t`'s buffer, so the engine may keep it as
// a leaf gradient and later add into it in place instead of copying it first.
bool exclusively_owned(const Tensor& t) {
  return t.storage().use_count() == 1 && t.is_contiguous() && t.offset() == 0;
}

// Adds a gradient into a variable's .grad (a leaf's, or that of a non-leaf
// that retains it). The first gradient is copied unless the engine holds the
// only reference: backward functions may hand the same tensor to two inputs
// (add) or pass grad_output straight through, and an optimizer that scales one
// leaf's gradient in place must not change another's.
void accumulate_grad(VariableImpl& variable, Tensor&& grad) {
  if (grad.dtype() != variable.data.dtype()) grad = grad.to(variable.data.dtype());
  if (!variable.grad.defined()) {
    variable.grad = exclusively_owned(grad) ? std::move(grad) : grad.clone();
  } else {
    ops::add_(variable.grad, grad);
  }
}

// Per-node bookkeeping of one backward pass.
struct PendingNode {
  std::int64_t consumers_left = 0;  // nodes that still have to send a gradient here
  Tensor grad;                      // sum of the gradients received so far
};

bool sends_gradient(const Variable& input) { return input.defined() && input.requires_grad(); }

// Counts, for every node reachable from root, how many edges lead into it, and
// refuses a graph that an earlier backward() already freed. Iterative, so a
// deep network cannot overflow the stack.
std::unordered_map<Node*, PendingNode> collect_graph(const std::shared_ptr<Node>& root) {
  std::unordered_map<Node*, PendingNode> pending;
  pending[root.get()];
  std::vector<Node*> stack{root.get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    PETAL_CHECK(!node->released(), AutogradError, "backward: the graph through op '", node->op(),
                "' was already freed by an earlier backward(); pass retain_graph=true to the first backward() ",
                "to backpropagate through it again");
    for (const Variable& input : node->inputs()) {
      if (!sends_gradient(input) || !input.grad_fn()) continue;
      Node* producer = input.grad_fn().get();
      auto [it, inserted] = pending.try_emplace(producer);
      ++it->second.consumers_left;
      if (inserted) stack.push_back(producer);
    }
  }
  return pending;
}

void add_into(Tensor& sum, Tensor&& grad) {
  // Out of place: `sum` may be the very tensor another input also received.
  sum = sum.defined() ? ops::add(sum, grad) : std::move(grad);
}

void run_backward(const std::shared_ptr<VariableImpl>& root, Tensor seed, bool retain_graph) {
  if (!root->grad_fn) {
    accumulate_grad(*root, std::move(seed));
    if (root->grad_ready_hook) root->grad_ready_hook();
    return;
  }
  // Backward functions work on tensors; nothing they do belongs on a tape.
  NoGradGuard no_grad;
  // Raw pointers are safe here: a node still waiting for gradients is owned by
  // a variable on an edge of a consumer that has not run yet.
  std::unordered_map<Node*, PendingNode> pending = collect_graph(root->grad_fn);

  pending[root->grad_fn.get()].grad = std::move(seed);
  // Leaves with a grad-ready hook: how many edges of the graph still have to
  // deliver their part of its gradient.
  std::unordered_map<VariableImpl*, std::int64_t> hooked_leaf_edges;
  for (const auto& entry : pending)
    for (const Variable& input : entry.first->inputs())
      if (sends_gradient(input) && !input.grad_fn() && input.impl()->grad_ready_hook)
        ++hooked_leaf_edges[input.impl().get()];
  std::vector<std::shared_ptr<Node>> ready{root->grad_fn};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    // The gradient buffer leaves the table now and dies with this iteration.
    Tensor grad_output = std::move(pending[node.get()].grad);
    pending.erase(node.get());

    std::vector<Tensor> input_grads;
    if (grad_output.defined()) {
      if (!grad_output.is_contiguous()) grad_output = grad_output.contiguous();
      if (const std::shared_ptr<VariableImpl> output = node->retained_output().lock()) {
        accumulate_grad(*output, Tensor(grad_output));
      }
      input_grads = node->apply(grad_output);
      grad_output = Tensor();
      PETAL_CHECK(input_grads.size() == node->inputs().size(), AutogradError, "backward of '", node->op(),
                  "' returned ", input_grads.size(), " gradients for ", node->inputs().size(), " inputs");
    }
    // Copy the edges before release() drops them.
    const std::vector<Variable> inputs = node->inputs();
    if (!retain_graph) node->release();

    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Variable& input = inputs[i];
      if (!sends_gradient(input)) continue;
      Tensor grad = input_grads.empty() ? Tensor() : std::move(input_grads[i]);
      if (grad.defined()) {
        PETAL_CHECK(grad.shape() == input.shape(), AutogradError, "backward of '", node->op(), "' returned a ",
                    shape_str(grad.shape()), " gradient for input ", i, " of shape ", shape_str(input.shape()));
      }
      const std::shared_ptr<Node>& producer = input.grad_fn();
      if (!producer) {
        if (grad.defined()) accumulate_grad(*input.impl(), std::move(grad));
        auto hooked = hooked_leaf_edges.find(input.impl().get());
        if (hooked != hooked_leaf_edges.end() && --hooked->second == 0) input.impl()->grad_ready_hook();
        continue;
      }
      PendingNode& state = pending.at(producer.get());
      if (grad.defined()) add_into(state.grad, std::move(grad));
      if (--state.consumers_left == 0) ready.push_back(producer);
    }
  }
}

}  // namespace

// ---- Variable ----

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  data.check_defined("Variable");
  PETAL_CHECK(!requires_grad || is_floating(data.dtype()), DTypeError,
              "Variable: only floating tensors can require gradients, got ", data.dtype());
  impl_->data = std::move(data);
  impl_->requires_grad = requires_grad;
}

const Tensor& Variable::data() const { return checked_impl(impl_, "data").data; }
Tensor& Variable::mutable_data() { return checked_impl(impl_, "mutable_data").data; }
void Variable::set_data(Tensor data) {
  data.check_defined("Variable::set_data");
  checked_impl(impl_, "set_data").data = std::move(data);
}

bool Variable::requires_grad() const { return checked_impl(impl_, "requires_grad").requires_grad; }
void Variable::set_requires_grad(bool value) {
  VariableImpl& v = checked_impl(impl_, "set_requires_grad");
  PETAL_CHECK(v.grad_fn == nullptr, AutogradError, "set_requires_grad: ", describe(v),
              " is the result of op '", v.grad_fn->op(), "'; only leaves can change requires_grad (use detach())");
  PETAL_CHECK(!value || is_floating(v.data.dtype()), DTypeError, "set_requires_grad: ", describe(v), " is ",
              v.data.dtype(), "; only floating tensors can require gradients");
  v.requires_grad = value;
}
bool Variable::is_leaf() const { return checked_impl(impl_, "is_leaf").grad_fn == nullptr; }
const std::shared_ptr<Node>& Variable::grad_fn() const { return checked_impl(impl_, "grad_fn").grad_fn; }

const Tensor& Variable::grad() const { return checked_impl(impl_, "grad").grad; }
bool Variable::has_grad() const { return checked_impl(impl_, "has_grad").grad.defined(); }
void Variable::set_grad(Tensor grad) {
  VariableImpl& v = checked_impl(impl_, "set_grad");
  if (grad.defined()) {
    PETAL_CHECK(grad.shape() == v.data.shape(), ShapeError, "set_grad: gradient of shape ", shape_str(grad.shape()),
                " for ", describe(v), " of shape ", shape_str(v.data.shape()));
  }
  v.grad = std::move(grad);
}
void Variable::zero_grad() { checked_impl(impl_, "zero_grad").grad = Tensor(); }
void Variable::retain_grad() {
  VariableImpl& v = checked_impl(impl_, "retain_grad");
  if (!v.grad_fn) return;
  v.grad_fn->set_retained_output(impl_);
}

void Variable::backward(bool retain_graph) const {
  const VariableImpl& v = checked_impl(impl_, "backward");
  PETAL_CHECK(v.data.numel() == 1, AutogradError, "backward: ", describe(v), " has shape ",
              shape_str(v.data.shape()), "; backward() without a seed needs a single element (pass a seed gradient)");
  backward(ones(v.data.shape(), v.data.dtype(), v.data.device()), retain_graph);
}

void Variable::backward(const Tensor& seed, bool retain_graph) const {
  const VariableImpl& v = checked_impl(impl_, "backward");
  PETAL_CHECK(v.requires_grad, AutogradError, "backward: ", describe(v),
              " does not require a gradient (no input of its ops requires one, or it was computed under no_grad)");
  seed.check_defined("backward");
  PETAL_CHECK(seed.shape() == v.data.shape(), ShapeError, "backward: seed of shape ", shape_str(seed.shape()),
              " for ", describe(v), " of shape ", shape_str(v.data.shape()));
  PETAL_CHECK(seed.device() == v.data.device(), DeviceError, "backward: the seed is on another device than ",
              describe(v));
  run_backward(impl_, seed.dtype() == v.data.dtype() ? seed : seed.to(v.data.dtype()), retain_graph);
}

Variable Variable::detach() const {
  const VariableImpl& v = checked_impl(impl_, "detach");
  Variable out(v.data, false);
  out.impl_->name = v.name;
  return out;
}

void Variable::set_grad_ready_hook(std::function<void()> hook) {
  VariableImpl& v = checked_impl(impl_, "set_grad_ready_hook");
  PETAL_CHECK(!v.grad_fn || !hook, AutogradError, "set_grad_ready_hook: ", describe(v),
              " is not a leaf (hooks report leaves' gradients)");
  v.grad_ready_hook = std::move(hook);
}

const std::string& Variable::name() const { return checked_impl(impl_, "name").name; }
Variable& Variable::set_name(std::string name) {
  checked_impl(impl_, "set_name").name = std::move(name);
  return *this;
}

// ---- Node ----

Node::Node(std::string op, std::vector<Variable> inputs, BackwardFn backward)
    : op_(std::move(op)), inputs_(std::move(inputs)), backward_(std::move(backward)) {}

Node::~Node() {
  // Nodes that only this graph still owns are detached into a worklist and die
  // one at a time with their edges already cleared, instead of recursing
  // through Variable -> VariableImpl -> Node for every op of the chain.
  std::vector<std::shared_ptr<Node>> orphans;
  auto detach_inputs = [&orphans](std::vector<Variable>& inputs) {
    for (const Variable& input : inputs) {
      const std::shared_ptr<VariableImpl>& impl = input.impl();
      if (impl && impl.use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1) {
        orphans.push_back(std::move(impl->grad_fn));
      }
    }
    inputs.clear();
  };
  detach_inputs(inputs_);
  while (!orphans.empty()) {
    std::shared_ptr<Node> node = std::move(orphans.back());
    orphans.pop_back();
    detach_inputs(node->inputs_);
  }
}

std::vector<Tensor> Node::apply(const Tensor& grad_output) {
  PETAL_CHECK(!released_, AutogradError, "backward: the graph through op '", op_,
              "' was already freed by an earlier backward(); pass retain_graph=true to backpropagate twice");
  return backward_(grad_output);
}

void Node::release() {
  // Dropping the closure frees the tensors the op saved for backward; dropping
  // the edges lets the intermediate variables (activations) go as well.
  backward_ = nullptr;
  inputs_.clear();
  inputs_.shrink_to_fit();
  released_ = true;
}

Variable make_op_result(Tensor output, const char* op, std::vector<Variable> inputs, BackwardFn backward) {
  bool record = false;
  if (grad_enabled()) {
    for (const Variable& input : inputs) record = record || sends_gradient(input);
  }
  if (!record) return Variable(std::move(output), false);
  Variable result(std::move(output), false);
  VariableImpl& impl = *result.impl();
  impl.requires_grad = true;
  impl.grad_fn = std::make_shared<Node>(op, std::move(inputs), std::move(backward));
  return result;
}

// ---- grad mode ----

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

}  // namespace petal::ag
