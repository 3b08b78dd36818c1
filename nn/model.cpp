#include "nn/model.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"

namespace petal::nn {

namespace {

std::string names_of(const std::vector<const Node*>& nodes) {
  std::string out;
  for (std::size_t i = 0; i < nodes.size(); ++i) out += (i ? " -> " : "") + nodes[i]->layer->name();
  return out;
}

bool is_source(const Node& node) { return node.inputs.empty(); }

}  // namespace

Model::Model(const SymbolicTensor& input, const SymbolicTensor& output, std::string name)
    : Model(std::vector<SymbolicTensor>{input}, std::vector<SymbolicTensor>{output}, std::move(name)) {}

Model::Model(std::vector<SymbolicTensor> inputs, std::vector<SymbolicTensor> outputs, std::string name)
    : Module("Functional", "functional", std::move(name)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {
  compile_graph();
  make_plan();
  std::vector<Shape> shapes;
  for (const auto& x : inputs_) shapes.push_back(x.shape());
  // A one-input model declares its input shape, so a Sequential that starts
  // with it builds at once.
  if (shapes.size() == 1) set_input_shape(shapes[0]);
  build_for(shapes);
}

void Model::compile_graph() {
  PETAL_CHECK(!inputs_.empty() && !outputs_.empty(), ValueError, "Model \"", name(),
              "\" needs at least one input and one output");
  std::set<const Node*> input_nodes;
  for (const auto& x : inputs_) {
    PETAL_CHECK(x.defined(), ValueError, "Model \"", name(), "\": an input is an undefined symbolic tensor");
    PETAL_CHECK(is_source(*x.node()) && dynamic_cast<const InputLayer*>(&x.layer()) != nullptr, ValueError, "Model \"",
                name(), "\": input ", x.str(), " comes from layer \"", x.layer().name(),
                "\"; a model's inputs are made by nn::Input()");
    PETAL_CHECK(input_nodes.insert(x.node().get()).second, ValueError, "Model \"", name(), "\": input \"",
                x.layer().name(), "\" is listed twice");
  }

  // Depth-first from the outputs, iteratively (graphs may be deep); post-order
  // is a topological order. A node still on the path when reached again
  // would close a cycle.
  enum class Mark { OnPath, Done };
  std::map<const Node*, Mark> marks;
  std::vector<std::shared_ptr<const Node>> order;
  for (const auto& out : outputs_) {
    PETAL_CHECK(out.defined(), ValueError, "Model \"", name(), "\": an output is an undefined symbolic tensor");
    struct Frame {
      std::shared_ptr<const Node> node;
      std::size_t next_input = 0;
    };
    std::vector<Frame> stack;
    if (marks.count(out.node().get())) continue;
    stack.push_back({out.node()});
    marks[out.node().get()] = Mark::OnPath;
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next_input < top.node->inputs.size()) {
        const auto& child = top.node->inputs[top.next_input++].node();
        auto it = marks.find(child.get());
        if (it == marks.end()) {
          marks[child.get()] = Mark::OnPath;
          stack.push_back({child});
        } else if (it->second == Mark::OnPath) {
          std::vector<const Node*> path;
          for (const auto& f : stack) path.push_back(f.node.get());
          path.push_back(child.get());
          throw ValueError(str_cat("Model \"", name(), "\": the graph has a cycle: ", names_of(path)));
        }
        continue;
      }
      const Node* node = top.node.get();
      if (is_source(*node))
        PETAL_CHECK(input_nodes.count(node), ValueError, "Model \"", name(), "\": output ", out.str(),
                    " depends on input \"", node->layer->name(),
                    "\", which is not among the model's inputs (pass it in `inputs`)");
      marks[node] = Mark::Done;
      order.push_back(top.node);
      stack.pop_back();
    }
  }
  for (const auto& x : inputs_)
    PETAL_CHECK(marks.count(x.node().get()), ValueError, "Model \"", name(), "\": input \"", x.layer().name(),
                "\" is not connected to any output");

  // Value slots: the inputs first, then every node output in order.
  std::map<std::pair<const Node*, int>, int> slot_of;
  auto slot = [&](const SymbolicTensor& t) { return slot_of.at({t.node().get(), t.output_index()}); };
  for (const auto& x : inputs_) {
    slot_of[{x.node().get(), x.output_index()}] = slot_count_;
    input_slots_.push_back(slot_count_++);
  }
  for (const auto& node : order) {
    if (is_source(*node)) continue;
    FusionStep step;
    step.layer = node->layer.get();
    for (const auto& in : node->inputs) step.inputs.push_back(slot(in));
    for (std::size_t i = 0; i < node->output_shapes.size(); ++i) {
      slot_of[{node.get(), static_cast<int>(i)}] = slot_count_;
      step.outputs.push_back(slot_count_++);
    }
    calls_.push_back(std::move(step));
  }
  for (const auto& out : outputs_) output_slots_.push_back(slot(out));
  nodes_ = std::move(order);

  // Layers, each once: the inputs' first, then in the order they run.
  std::set<const Module*> added;
  for (const auto& x : inputs_)
    if (added.insert(&x.layer()).second) add_child(x.node()->layer);
  for (const auto& node : nodes_)
    if (added.insert(node->layer.get()).second) add_child(node->layer);
}

void Model::set_fusion(bool enabled) {
  if (enabled == fusion_) return;
  fusion_ = enabled;
  make_plan();
}

void Model::make_plan() {
  steps_ = calls_;
  if (fusion_) fuse_steps(steps_, output_slots_, slot_count_);
  // Without gradients nothing else keeps an activation alive: dropping each
  // value after its last reader keeps inference's peak memory that of the
  // widest point of the graph, not the sum of all activations.
  std::vector<int> last_reader(static_cast<std::size_t>(slot_count_), -1);
  for (std::size_t k = 0; k < steps_.size(); ++k)
    for (int in : steps_[k].inputs) last_reader[static_cast<std::size_t>(in)] = static_cast<int>(k);
  for (int out : output_slots_) last_reader[static_cast<std::size_t>(out)] = -1;
  for (std::size_t slot = 0; slot < last_reader.size(); ++slot)
    if (last_reader[slot] >= 0) steps_[static_cast<std::size_t>(last_reader[slot])].last_reads.push_back(static_cast<int>(slot));
}

std::vector<Shape> Model::build_multi(const std::vector<Shape>& input_shapes) {
  PETAL_CHECK(input_shapes.size() == inputs_.size(), ValueError, "Model \"", name(), "\" takes ", inputs_.size(),
              " input(s), got ", input_shapes.size());
  for (std::size_t i = 0; i < inputs_.size(); ++i)
    PETAL_CHECK(input_shapes[i] == inputs_[i].shape(), ShapeError, "Model \"", name(), "\": input \"",
                inputs_[i].layer().name(), "\" has shape ", keras_shape_str(inputs_[i].shape()), ", got ",
                keras_shape_str(input_shapes[i]));
  std::vector<Shape> shapes;
  for (const auto& out : outputs_) shapes.push_back(out.shape());
  return shapes;
}

ActivationKind Model::logits_activation() const {
  constexpr ActivationKind none = ActivationKind::Linear;
  if (outputs_.size() != 1 || steps_.empty()) return none;
  // The last step makes the output when it ends in a softmax that nothing
  // else in the graph reads (the logits would reach those readers otherwise).
  const FusionStep& last = steps_.back();
  if (last.kind != FusionStep::Kind::Call || last.outputs.size() != 1 || last.outputs[0] != output_slots_[0]) return none;
  for (const FusionStep& s : steps_)
    if (std::find(s.inputs.begin(), s.inputs.end(), output_slots_[0]) != s.inputs.end()) return none;
  return last.layer->logits_activation();
}

std::vector<ag::Variable> Model::run(const std::vector<ag::Variable>& inputs, bool logits) {
  return run_maybe_split(*this, inputs, [&](const std::vector<ag::Variable>& part) { return run_plan(part, logits); });
}

std::vector<ag::Variable> Model::run_plan(const std::vector<ag::Variable>& inputs, bool logits) {
  std::vector<ag::Variable> values(static_cast<std::size_t>(slot_count_));
  for (std::size_t i = 0; i < inputs.size(); ++i) values[static_cast<std::size_t>(input_slots_[i])] = inputs[i];
  std::vector<ag::Variable> args;
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const FusionStep& step = steps_[k];
    args.clear();
    for (int in : step.inputs) args.push_back(values[static_cast<std::size_t>(in)]);
    std::vector<ag::Variable> results;
    if (step.kind != FusionStep::Kind::Call) {
      results = {run_fused_step(step, args[0])};
    } else if (logits && k + 1 == steps_.size()) {
      results = {step.layer->call_logits(args[0])};
    } else {
      results = (*step.layer)(args);
    }
    for (std::size_t i = 0; i < step.outputs.size(); ++i)
      values[static_cast<std::size_t>(step.outputs[i])] = std::move(results[i]);
    for (int slot : step.last_reads) values[static_cast<std::size_t>(slot)] = ag::Variable();
  }
  std::vector<ag::Variable> outputs;
  for (int s : output_slots_) outputs.push_back(values[static_cast<std::size_t>(s)]);
  return outputs;
}

std::vector<ag::Variable> Model::forward_multi(const std::vector<ag::Variable>& inputs) { return run(inputs, false); }

ag::Variable Model::forward(const ag::Variable& x) {
  PETAL_CHECK(outputs_.size() == 1, ValueError, "Model \"", name(), "\" has ", outputs_.size(),
              " outputs; call it with a vector of inputs");
  return run({x}, false)[0];
}

ag::Variable Model::forward_logits(const ag::Variable& x) {
  PETAL_CHECK(outputs_.size() == 1, ValueError, "Model \"", name(), "\" has ", outputs_.size(),
              " outputs; call_logits needs one");
  return run({x}, logits_activation() != ActivationKind::Linear)[0];
}

std::shared_ptr<Module> Model::get_layer(std::string_view layer_name) const {
  // By display name first, then by structural key (which does not depend on
  // how many layers the process made before: "batch_normalization" finds the
  // first automatic BatchNormalization of this model even when its display
  // name is batch_normalization_3).
  for (const auto& c : children())
    if (c->name() == layer_name) return c;
  const std::vector<std::string> keys = child_keys();
  std::string known;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == layer_name) return children()[i];
    known += (known.empty() ? "" : ", ") + children()[i]->name();
  }
  throw ValueError(str_cat("Model \"", name(), "\" has no layer \"", layer_name, "\" (layers: ", known, ")"));
}

std::string Model::summary() const {
  std::map<const Module*, std::vector<std::string>> links;
  for (const auto& node : nodes_)
    for (const auto& in : node->inputs) links[node->layer.get()].push_back(in.str());
  std::vector<SummaryRow> rows;
  for (const auto& c : children()) {
    SummaryRow row = c->summary_row();
    row.connected_to = links[c.get()];
    rows.push_back(std::move(row));
  }
  return summary_table(rows, true);
}

}  // namespace petal::nn
