#include "nn/module.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <mutex>
#include <sstream>

#include "core/error.hpp"

namespace petal::nn {

namespace {
std::mutex& names_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, int, std::less<>>& name_counters() {
  static std::map<std::string, int, std::less<>> counters;
  return counters;
}

std::string with_thousands(std::int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0 && *it != '-') out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++count;
  }
  return out;
}
}  // namespace

std::string unique_layer_name(std::string_view base) {
  std::lock_guard<std::mutex> lock(names_mutex());
  auto& counters = name_counters();
  auto it = counters.find(base);
  if (it == counters.end()) {
    counters.emplace(std::string(base), 1);
    return std::string(base);
  }
  return str_cat(base, "_", it->second++);
}

void reset_layer_names() {
  std::lock_guard<std::mutex> lock(names_mutex());
  name_counters().clear();
}

std::string snake_case(std::string_view class_name) {
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; };
  std::string name;
  for (char c : class_name)
    if (word(c)) name += c;
  // "(.)([A-Z][a-z]+)" -> "\1_\2": an underscore before each capitalised word.
  std::string first;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (i > 0 && upper(name[i]) && i + 1 < name.size() && lower(name[i + 1])) first += '_';
    first += name[i];
  }
  // "([a-z])([A-Z])" -> "\1_\2", then lower case.
  std::string out;
  for (std::size_t i = 0; i < first.size(); ++i) {
    if (i > 0 && lower(first[i - 1]) && upper(first[i])) out += '_';
    out += upper(first[i]) ? static_cast<char>(first[i] - 'A' + 'a') : first[i];
  }
  return out;
}

std::string keras_shape_str(const Shape& shape) {
  std::string out = "(None";
  for (std::int64_t d : shape) out += ", " + std::to_string(d);
  return out + ")";
}

namespace {
thread_local std::optional<bool> tls_training;
}  // namespace

TrainingScope::TrainingScope(std::optional<bool> training) : previous_(tls_training) {
  if (training) tls_training = training;
}
TrainingScope::~TrainingScope() { tls_training = previous_; }
std::optional<bool> TrainingScope::current() { return tls_training; }

Module::Module(std::string type_name, std::string_view base_name, std::string name)
    : type_name_(std::move(type_name)), base_name_(base_name), automatic_name_(name.empty()) {
  name_ = automatic_name_ ? unique_layer_name(base_name) : std::move(name);
}

Module::Module(std::string type_name, std::string name)
    : Module(type_name, snake_case(type_name), std::move(name)) {}

void Module::build(const Shape& input_shape) { build_for({input_shape}); }

namespace {
std::string shapes_str(const std::vector<Shape>& shapes) {
  if (shapes.size() == 1) return keras_shape_str(shapes[0]);
  std::string out = "[";
  for (std::size_t i = 0; i < shapes.size(); ++i) out += (i ? ", " : "") + keras_shape_str(shapes[i]);
  return out + "]";
}
}  // namespace

void Module::build_for(const std::vector<Shape>& input_shapes) {
  if (built_) {
    PETAL_CHECK(input_shapes == input_shapes_, ShapeError, "layer \"", name_, "\" (", type_name_,
                ") was built for input ", shapes_str(input_shapes_), ", called with ", shapes_str(input_shapes));
    return;
  }
  // An InputLayer is built with no inputs: it is where its shape comes from.
  if (declared_input_shape_ && !input_shapes.empty())
    PETAL_CHECK(input_shapes.size() == 1 && *declared_input_shape_ == input_shapes[0], ShapeError, "layer \"",
                name_, "\" (", type_name_, ") declares input_shape ", keras_shape_str(*declared_input_shape_),
                ", got ", shapes_str(input_shapes));
  output_shapes_from_forward_ = false;
  output_shapes_ = build_multi(input_shapes);
  input_shapes_ = input_shapes;
  built_ = true;
}

Shape Module::build_impl(const Shape&) {
  output_shapes_from_forward_ = true;
  return {};
}

std::vector<Shape> Module::build_multi(const std::vector<Shape>& input_shapes) {
  PETAL_CHECK(input_shapes.size() == 1, ValueError, "layer \"", name_, "\" (", type_name_,
              ") takes one input, got ", input_shapes.size());
  Shape out = build_impl(input_shapes[0]);
  if (output_shapes_from_forward_) return {};
  return {std::move(out)};
}

ag::Variable Module::forward(const ag::Variable&) {
  throw ValueError(str_cat("layer \"", name_, "\" (", type_name_, ") does not define forward"));
}

std::vector<ag::Variable> Module::forward_multi(const std::vector<ag::Variable>& inputs) {
  PETAL_CHECK(inputs.size() == 1, ValueError, "layer \"", name_, "\" (", type_name_, ") takes one input, got ",
              inputs.size());
  return {forward(inputs[0])};
}

const std::vector<Shape>& Module::input_shapes() const {
  PETAL_CHECK(built_, ValueError, "layer \"", name_, "\" is not built yet: give it an input shape or call it");
  return input_shapes_;
}

const std::vector<Shape>& Module::output_shapes() const {
  PETAL_CHECK(built_, ValueError, "layer \"", name_, "\" is not built yet: give it an input shape or call it");
  return output_shapes_;
}

const Shape& Module::input_shape() const {
  const auto& shapes = input_shapes();
  PETAL_CHECK(shapes.size() == 1, ShapeError, "layer \"", name_, "\" has ", shapes.size(),
              " inputs; use input_shapes()");
  return shapes[0];
}

const Shape& Module::output_shape() const {
  const auto& shapes = output_shapes();
  PETAL_CHECK(!shapes.empty(), ValueError, "layer \"", name_,
              "\" learns its output shape when first called; call it once first");
  PETAL_CHECK(shapes.size() == 1, ShapeError, "layer \"", name_, "\" has ", shapes.size(),
              " outputs; use output_shapes()");
  return shapes[0];
}

namespace {
Shape without_batch(const ag::Variable& x, const std::string& layer) {
  PETAL_CHECK(x.defined() && x.dim() >= 1, ShapeError, "layer \"", layer, "\": input needs a batch axis");
  const Shape& s = x.shape();
  return Shape(s.begin() + 1, s.end());
}
}  // namespace

std::vector<ag::Variable> Module::run(const std::vector<ag::Variable>& inputs, std::optional<bool> training,
                                      bool logits) {
  std::vector<Shape> shapes;
  for (const auto& x : inputs) shapes.push_back(without_batch(x, name_));
  build_for(shapes);
  TrainingScope scope(training);
  std::vector<ag::Variable> outputs;
  if (logits) {
    PETAL_CHECK(inputs.size() == 1, ValueError, "layer \"", name_, "\": call_logits takes one input");
    outputs = {forward_logits(inputs[0])};
  } else {
    outputs = forward_multi(inputs);
  }
  if (output_shapes_from_forward_ && output_shapes_.empty())
    for (const auto& y : outputs) output_shapes_.push_back(without_batch(y, name_));
  return outputs;
}

ag::Variable Module::operator()(const ag::Variable& x, std::optional<bool> training) {
  std::vector<ag::Variable> outputs = run({x}, training, false);
  PETAL_CHECK(outputs.size() == 1, ValueError, "layer \"", name_, "\" has ", outputs.size(),
              " outputs; call it with a vector of inputs");
  return outputs[0];
}

std::vector<ag::Variable> Module::operator()(const std::vector<ag::Variable>& inputs, std::optional<bool> training) {
  return run(inputs, training, false);
}

ag::Variable Module::call_logits(const ag::Variable& x, std::optional<bool> training) {
  return run({x}, training, true)[0];
}

void Module::infer_output_shapes() {
  ag::NoGradGuard no_grad;
  TrainingScope inference(false);
  std::vector<ag::Variable> probes;
  for (const Shape& s : input_shapes_) {
    Shape batched{1};
    batched.insert(batched.end(), s.begin(), s.end());
    probes.emplace_back(zeros(batched, DType::Float32, device()), false);
  }
  std::vector<ag::Variable> outputs = forward_multi(probes);
  for (const auto& y : outputs) output_shapes_.push_back(without_batch(y, name_));
}

std::vector<SymbolicTensor> Module::call_symbolic(const std::vector<SymbolicTensor>& inputs) {
  std::shared_ptr<Module> self = weak_from_this().lock();
  PETAL_CHECK(self != nullptr, ValueError, "layer \"", name_, "\" (", type_name_,
              ") is called on symbolic tensors but is not owned by a std::shared_ptr: make it with nn::layer<",
              type_name_, ">(...) or std::make_shared");
  std::vector<Shape> shapes;
  for (const auto& x : inputs) {
    PETAL_CHECK(x.defined(), ValueError, "layer \"", name_, "\": an input symbolic tensor is undefined");
    PETAL_CHECK(!x.layer().contains(this), ValueError, "layer \"", name_, "\" is called on the output of \"",
                x.layer().name(), "\", which contains it: that would be a cycle");
    shapes.push_back(x.shape());
  }
  try {
    build_for(shapes);
  } catch (const ShapeError& e) {
    // Name where the inputs come from: the shapes alone rarely say which
    // call of a graph went wrong.
    std::string sources;
    for (std::size_t i = 0; i < inputs.size(); ++i) sources += (i ? ", " : "") + inputs[i].str();
    throw ShapeError(str_cat(e.what(), " (called on ", sources, ")"));
  }
  if (output_shapes_from_forward_ && output_shapes_.empty()) infer_output_shapes();
  auto node = std::make_shared<Node>();
  node->layer = std::move(self);
  node->inputs = inputs;
  node->output_shapes = output_shapes_;
  node->call_index = symbolic_calls_++;
  std::vector<SymbolicTensor> outputs;
  for (std::size_t i = 0; i < node->output_shapes.size(); ++i) outputs.emplace_back(node, static_cast<int>(i));
  return outputs;
}

SymbolicTensor Module::operator()(const SymbolicTensor& x) { return (*this)(std::vector<SymbolicTensor>{x}); }

SymbolicTensor Module::operator()(const std::vector<SymbolicTensor>& inputs) {
  std::vector<SymbolicTensor> outputs = call_symbolic(inputs);
  PETAL_CHECK(outputs.size() == 1, ValueError, "layer \"", name_, "\" has ", outputs.size(),
              " outputs; use call_symbolic()");
  return outputs[0];
}

bool Module::training() const {
  const std::optional<bool> scope = TrainingScope::current();
  return scope ? *scope : training_;
}

void Module::set_training(bool training) {
  training_ = training;
  for (auto& c : children_) c->set_training(training);
}

void Module::set_trainable(bool trainable) {
  trainable_ = trainable;
  for (auto& w : local_weights_)
    if (w.is_parameter) w.variable.set_requires_grad(trainable);
  for (auto& c : children_) c->set_trainable(trainable);
}

std::vector<std::string> Module::child_keys() const {
  std::set<std::string> used;
  for (const auto& c : children_)
    if (!c->automatic_name_) used.insert(c->name_);
  std::map<std::string, int> next;
  std::vector<std::string> keys;
  for (const auto& c : children_) {
    if (!c->automatic_name_) {
      keys.push_back(c->name_);
      continue;
    }
    int& n = next[c->base_name_];
    std::string key;
    do {
      key = n == 0 ? c->base_name_ : str_cat(c->base_name_, "_", n);
      ++n;
    } while (used.count(key));
    used.insert(key);
    keys.push_back(key);
  }
  return keys;
}

void Module::collect_weights(const std::string& prefix, std::vector<WeightRef>& out) const {
  for (const auto& w : local_weights_)
    out.push_back({name_ + "/" + w.name, prefix + w.name, w.variable, w.is_parameter, w.is_parameter && trainable_});
  const std::vector<std::string> keys = child_keys();
  for (std::size_t i = 0; i < children_.size(); ++i) children_[i]->collect_weights(prefix + keys[i] + "/", out);
}

std::vector<WeightRef> Module::weights() const {
  std::vector<WeightRef> out;
  collect_weights("", out);
  return out;
}
std::vector<ag::Variable> Module::trainable_parameters() const {
  std::vector<ag::Variable> out;
  for (auto& w : weights())
    if (w.trainable) out.push_back(w.variable);
  return out;
}

std::int64_t Module::count_params() const {
  std::int64_t n = 0;
  for (const auto& w : weights()) n += w.variable.numel();
  return n;
}

std::int64_t Module::count_trainable_params() const {
  std::int64_t n = 0;
  for (const auto& w : weights())
    if (w.trainable) n += w.variable.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& w : weights())
    if (w.is_parameter) w.variable.zero_grad();
}

void Module::to(Device device) {
  device_ = device;
  for (auto& w : local_weights_) {
    w.variable.zero_grad();
    if (w.variable.device() != device) w.variable.set_data(w.variable.data().to(device));
  }
  for (auto& c : children_) c->to(device);
}

Device Module::device() const {
  if (device_) return *device_;
  if (!local_weights_.empty()) return local_weights_.front().variable.device();
  for (const auto& c : children_) {
    const Device d = c->device();
    if (c->device_ || !d.is_cpu()) return d;
  }
  return Device::cpu();
}

ag::Variable Module::add_parameter(std::string local_name, Tensor initial) {
  return add_weight(std::move(local_name), std::move(initial), true);
}

ag::Variable Module::add_buffer(std::string local_name, Tensor initial) {
  return add_weight(std::move(local_name), std::move(initial), false);
}

ag::Variable Module::add_weight(std::string local_name, Tensor initial, bool is_parameter) {
  if (device_) initial = initial.to(*device_);
  ag::Variable v(std::move(initial), is_parameter && trainable_);
  v.set_name(name_ + "/" + local_name);
  local_weights_.push_back({std::move(local_name), v, is_parameter});
  return v;
}

bool Module::contains(const Module* other) const {
  if (this == other) return true;
  for (const auto& c : children_)
    if (c->contains(other)) return true;
  return false;
}

void Module::add_child_module(std::shared_ptr<Module> child) {
  PETAL_CHECK(child != nullptr, ValueError, "layer \"", name_, "\": null child");
  PETAL_CHECK(!child->contains(this), ValueError, "layer \"", name_, "\" cannot contain \"", child->name(),
              "\", which contains it: that would be a cycle");
  for (const auto& c : children_) {
    PETAL_CHECK(c != child, ValueError, "layer \"", child->name(), "\" is already a child of \"", name_, "\"");
    PETAL_CHECK(child->automatic_name_ || c->automatic_name_ || c->name_ != child->name_, ValueError, "\"", name_,
                "\" already has a layer named \"", child->name_, "\": layer names in a model must be unique");
  }
  child->set_training(training_);
  if (device_) child->to(*device_);
  children_.push_back(std::move(child));
}

void Module::check_input(bool ok, const Shape& input_shape, std::string_view expectation) const {
  PETAL_CHECK(ok, ShapeError, "layer \"", name_, "\" (", type_name_, "): input shape ",
              keras_shape_str(input_shape), " ", expectation);
}

SummaryRow Module::summary_row() const {
  SummaryRow row;
  row.layer = name_ + " (" + type_name_ + ")";
  if (!built_ || output_shapes_.empty()) {
    row.output_shape = "?";
  } else {
    for (std::size_t i = 0; i < output_shapes_.size(); ++i)
      row.output_shape += (i ? ", " : "") + keras_shape_str(output_shapes_[i]);
    if (output_shapes_.size() > 1) row.output_shape = "[" + row.output_shape + "]";
  }
  row.params = with_thousands(count_params());
  return row;
}

std::string Module::summary() const {
  std::vector<SummaryRow> rows;
  if (children_.empty()) rows.push_back(summary_row());
  for (const auto& c : children_)
    if (c->type_name() != "InputLayer") rows.push_back(c->summary_row());
  return summary_table(rows, false);
}

std::string Module::summary_table(const std::vector<SummaryRow>& rows, bool connections) const {
  const std::vector<std::string> headers = {"Layer (type)", "Output Shape", "Param #", "Connected to"};
  const std::size_t columns = connections ? 4 : 3;
  // Each column as wide as its longest entry, and at least Keras's widths.
  std::vector<std::size_t> width = {29, 26, 10, 20};
  for (std::size_t c = 0; c < columns; ++c) width[c] = std::max(width[c], headers[c].size() + 2);
  for (const auto& r : rows) {
    width[0] = std::max(width[0], r.layer.size() + 2);
    width[1] = std::max(width[1], r.output_shape.size() + 2);
    width[2] = std::max(width[2], r.params.size() + 2);
    for (const auto& link : r.connected_to) width[3] = std::max(width[3], link.size() + 1);
  }
  std::size_t line_length = 0;
  for (std::size_t c = 0; c < columns; ++c) line_length += width[c];
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < columns; ++c) {
      std::string cell = (c == 0 ? " " : "") + cells[c];
      if (c + 1 < columns) cell.resize(std::max(cell.size() + 1, width[c]), ' ');
      out += cell;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::ostringstream out;
  out << "Model: \"" << name_ << "\"\n" << std::string(line_length, '_') << "\n";
  out << line(headers) << std::string(line_length, '=') << "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SummaryRow& r = rows[i];
    const std::string first_link = r.connected_to.empty() ? "-" : r.connected_to[0];
    out << line({r.layer, r.output_shape, r.params, first_link});
    for (std::size_t k = 1; k < r.connected_to.size(); ++k) out << line({"", "", "", r.connected_to[k]});
    if (i + 1 < rows.size()) out << std::string(line_length, '-') << "\n";
  }
  out << std::string(line_length, '=') << "\n";
  out << "Total params: " << with_thousands(count_params()) << "\n";
  out << "Trainable params: " << with_thousands(count_trainable_params()) << "\n";
  out << "Non-trainable params: " << with_thousands(count_non_trainable_params()) << "\n";
  out << std::string(line_length, '_') << "\n";
  return out.str();
}

}  // namespace petal::nn
