#include "nn/module.hpp"

#include <map>
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

std::string keras_shape_str(const Shape& shape) {
  std::string out = "(None";
  for (std::int64_t d : shape) out += ", " + std::to_string(d);
  return out + ")";
}

Module::Module(std::string type_name, std::string_view base_name, std::string name)
    : type_name_(std::move(type_name)), name_(name.empty() ? unique_layer_name(base_name) : std::move(name)) {}

void Module::build(const Shape& input_shape) {
  if (built_) {
    PETAL_CHECK(input_shape == input_shape_, ShapeError, "layer \"", name_, "\" (", type_name_,
                ") was built for input ", keras_shape_str(input_shape_), ", called with ",
                keras_shape_str(input_shape));
    return;
  }
  if (declared_input_shape_)
    PETAL_CHECK(*declared_input_shape_ == input_shape, ShapeError, "layer \"", name_, "\" (", type_name_,
                ") declares input_shape ", keras_shape_str(*declared_input_shape_), ", got ",
                keras_shape_str(input_shape));
  output_shape_ = build_impl(input_shape);
  input_shape_ = input_shape;
  built_ = true;
}

const Shape& Module::input_shape() const {
  PETAL_CHECK(built_, ValueError, "layer \"", name_, "\" is not built yet: give it an input shape or call it");
  return input_shape_;
}

const Shape& Module::output_shape() const {
  PETAL_CHECK(built_, ValueError, "layer \"", name_, "\" is not built yet: give it an input shape or call it");
  return output_shape_;
}

namespace {
Shape without_batch(const ag::Variable& x, const std::string& layer) {
  PETAL_CHECK(x.defined() && x.dim() >= 1, ShapeError, "layer \"", layer, "\": input needs a batch axis");
  const Shape& s = x.shape();
  return Shape(s.begin() + 1, s.end());
}
}  // namespace

ag::Variable Module::operator()(const ag::Variable& x) {
  build(without_batch(x, name_));
  return forward(x);
}

ag::Variable Module::call_logits(const ag::Variable& x) {
  build(without_batch(x, name_));
  return forward_logits(x);
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

std::vector<WeightRef> Module::weights() const {
  std::vector<WeightRef> out;
  for (const auto& w : local_weights_)
    out.push_back({name_ + "/" + w.name, w.variable, w.is_parameter, w.is_parameter && trainable_});
  for (const auto& c : children_) {
    auto sub = c->weights();
    out.insert(out.end(), std::make_move_iterator(sub.begin()), std::make_move_iterator(sub.end()));
  }
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

void Module::add_child(std::shared_ptr<Module> child) {
  PETAL_CHECK(child != nullptr, ValueError, "layer \"", name_, "\": null child");
  child->set_training(training_);
  if (device_) child->to(*device_);
  children_.push_back(std::move(child));
}

void Module::check_input(bool ok, const Shape& input_shape, std::string_view expectation) const {
  PETAL_CHECK(ok, ShapeError, "layer \"", name_, "\" (", type_name_, "): input shape ",
              keras_shape_str(input_shape), " ", expectation);
}

std::string Module::summary(int line_length) const {
  const int c1 = line_length * 45 / 100, c2 = line_length * 85 / 100;
  auto row = [&](const std::string& a, const std::string& b, const std::string& c) {
    std::string line = " " + a;
    if (static_cast<int>(line.size()) < c1) line.resize(c1, ' ');
    line += " " + b;
    if (static_cast<int>(line.size()) < c2) line.resize(c2, ' ');
    line += " " + c;
    if (static_cast<int>(line.size()) < line_length) line.resize(line_length, ' ');
    return line + "\n";
  };
  std::ostringstream out;
  out << "Model: \"" << name_ << "\"\n" << std::string(line_length, '_') << "\n";
  out << row("Layer (type)", "Output Shape", "Param #") << std::string(line_length, '=') << "\n";
  std::vector<const Module*> rows;
  if (children_.empty()) rows.push_back(this);
  for (const auto& c : children_)
    if (c->type_name() != "InputLayer") rows.push_back(c.get());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Module* m = rows[i];
    out << row(m->name() + " (" + m->type_name() + ")", m->built() ? keras_shape_str(m->output_shape()) : "multiple",
               std::to_string(m->count_params()));
    if (i + 1 < rows.size()) out << std::string(line_length, ' ') << "\n";
  }
  out << std::string(line_length, '=') << "\n";
  out << "Total params: " << with_thousands(count_params()) << "\n";
  out << "Trainable params: " << with_thousands(count_trainable_params()) << "\n";
  out << "Non-trainable params: " << with_thousands(count_non_trainable_params()) << "\n";
  out << std::string(line_length, '_') << "\n";
  return out.str();
}

}  // namespace petal::nn
