#include "nn/keras_h5.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "kernels/ops_constant.hpp"
#include "nn/hdf5_file.hpp"

namespace petal::nn {

namespace {

// ---- the model's side: the layers Keras would list ----

bool is_keras_model(const Module& m) { return m.type_name() == "Sequential" || m.type_name() == "Functional"; }

// One entry of model.layers as Keras sees it: a leaf layer, or a nested
// model (Sequential/Functional) standing for all the weights below it.
struct ModelLayer {
  const Module* module;
  std::vector<WeightRef> weights;  // creation order
  bool nested;
};

// Containers that Keras has no class for (Residual) dissolve into their
// children; input layers have no weights and are not in Keras's list.
void collect_layers(const Module& container, std::vector<const Module*>& out) {
  for (const auto& child : container.children()) {
    if (child->type_name() == "InputLayer") continue;
    if (is_keras_model(*child) || child->children().empty()) out.push_back(child.get());
    else collect_layers(*child, out);
  }
}

std::vector<const Module*> keras_units(const Module& model) {
  std::vector<const Module*> units;
  if (is_keras_model(model) || !model.children().empty()) collect_layers(model, units);
  else units.push_back(&model);
  return units;
}

std::vector<ModelLayer> weighted_model_layers(const Module& model) {
  std::vector<ModelLayer> layers;
  for (const Module* unit : keras_units(model)) {
    std::vector<WeightRef> weights = unit->weights();
    if (!weights.empty()) layers.push_back({unit, std::move(weights), is_keras_model(*unit)});
  }
  return layers;
}

// Keras 2's _legacy_weights order: trainable weights, then the rest, each in
// creation order.
std::vector<WeightRef> legacy_order(std::vector<WeightRef> weights) {
  std::stable_partition(weights.begin(), weights.end(), [](const WeightRef& w) { return w.trainable; });
  return weights;
}

std::string layer_part(const std::string& name) {
  const std::size_t slash = name.rfind('/');
  return slash == std::string::npos ? std::string() : name.substr(0, slash);
}

std::string local_part(const std::string& name) {
  const std::size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// "Conv1/kernel:0" -> "Conv1/kernel" (TensorFlow's output index).
std::string without_output_index(const std::string& name) {
  const std::size_t colon = name.rfind(':');
  if (colon == std::string::npos || colon + 1 == name.size()) return name;
  for (std::size_t i = colon + 1; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return name;
  return name.substr(0, colon);
}

// ---- the file's side ----

struct FileWeight {
  std::string name;  // "Conv1/kernel" (a nested group's prefix removed)
  std::string local;  // "kernel"
  std::shared_ptr<hdf5::Dataset> dataset;
};

struct FileLayer {
  std::string name;
  std::vector<FileWeight> weights;
  bool nested;  // its weights belong to several inner layers
};

// Where a legacy file keeps its layers: the root, or /model_weights in a
// whole-model save.
std::optional<hdf5::Group> legacy_root(const hdf5::File& file) {
  hdf5::Group root = file.root();
  if (root.has_attribute("layer_names") || root.has_attribute("layer_names0")) return root;
  if (root.has_group("model_weights")) {
    hdf5::Group inner = root.group("model_weights");
    if (inner.has_attribute("layer_names") || inner.has_attribute("layer_names0")) return inner;
  }
  return std::nullopt;
}

bool looks_like_keras_v3(const hdf5::Group& root) {
  return root.has_group("layers") || root.has_group("_layer_checkpoint_dependencies") || root.has_group("vars");
}

std::vector<FileLayer> read_legacy_layers(const hdf5::Group& layers_root) {
  const std::string file = layers_root.object().file().string();
  const std::vector<std::string> layer_names = *layers_root.keras_string_list("layer_names");
  std::vector<FileLayer> layers;
  std::set<std::string> seen;
  for (const std::string& layer_name : layer_names) {
    PETAL_CHECK(!layer_name.empty() && layer_name.find('/') == std::string::npos, FormatError, file,
                ": layer_names lists \"", layer_name, "\", which is not a layer name");
    PETAL_CHECK(seen.insert(layer_name).second, FormatError, file, ": layer_names lists \"", layer_name, "\" twice");
    PETAL_CHECK(layers_root.has_group(layer_name), FormatError, file, ": layer_names lists \"", layer_name,
                "\" but the file has no group for it");
    const hdf5::Group group = layers_root.group(layer_name);
    const auto weight_names = group.keras_string_list("weight_names");
    PETAL_CHECK(weight_names.has_value(), FormatError, file, ": group ", group.path(),
                " has no weight_names attribute");
    FileLayer layer{layer_name, {}, false};
    std::set<std::string> parts;
    for (const std::string& raw : *weight_names) {
      PETAL_CHECK(!raw.empty() && raw.front() != '/' && raw.find("//") == std::string::npos, FormatError, file,
                  ": group ", group.path(), " lists weight \"", raw, "\", which is not a weight path");
      std::string name = without_output_index(raw);
      // TF2 Keras may prefix a nested model's weights with its own name.
      if (name.rfind(layer_name + "/", 0) == 0 && layer_part(name) != layer_name) name = name.substr(layer_name.size() + 1);
      parts.insert(layer_part(name));
      layer.weights.push_back({name, local_part(name), std::make_shared<hdf5::Dataset>(hdf5::open_dataset(group, raw))});
    }
    layer.nested = parts.size() > 1;
    if (!layer.weights.empty()) layers.push_back(std::move(layer));
  }
  return layers;
}

// ---- matching ----

std::vector<FileLayer> split_nested(const FileLayer& layer);
std::vector<std::pair<std::string, std::vector<WeightRef>>> split_by_layer(const std::vector<WeightRef>& weights);

struct Assignment {
  std::shared_ptr<hdf5::Dataset> dataset;
  WeightRef weight;
};

class Matcher {
 public:
  Matcher(const LoadOptions& options, LoadReport& report) : options_(options), report_(report) {}

  void mismatch(const std::string& name, const std::string& problem) {
    if (options_.skip_mismatch) report_.skipped.push_back(name + ": " + problem);
    else problems_.push_back(str_cat("\"", name, "\": ", problem));
  }
  void problem(std::string text) { problems_.push_back(std::move(text)); }

  void assign(const std::shared_ptr<hdf5::Dataset>& dataset, const WeightRef& weight) {
    if (dataset->shape() != weight.variable.shape()) {
      mismatch(weight.name, str_cat("shape ", shape_str(dataset->shape()), " in the file (", dataset->path(), "), ",
                                    shape_str(weight.variable.shape()), " in the model"));
      return;
    }
    if (weight.variable.dtype() != DType::Float32) {
      mismatch(weight.name, str_cat("the model holds ", dtype_name(weight.variable.dtype()), ", Keras files float32"));
      return;
    }
    plan_.push_back({dataset, weight});
  }

  // The weights of one layer: by their local names ("gamma") when the file
  // and the model use the same set of them, else by order as Keras does
  // (Keras 3 calls a depthwise kernel "kernel", Keras 2 "depthwise_kernel").
  void by_layer(const std::string& file_layer, const std::vector<FileWeight>& file_weights,
                const std::string& model_layer, const std::vector<WeightRef>& model_weights) {
    if (file_weights.size() != model_weights.size()) {
      const std::string text = str_cat("layer \"", file_layer, "\" of the file holds ", file_weights.size(),
                                       " weight(s), layer \"", model_layer, "\" of the model ", model_weights.size());
      if (options_.skip_mismatch) report_.skipped.push_back(text);
      else problems_.push_back(text);
      return;
    }
    std::map<std::string, const FileWeight*> file_by_local;
    for (const FileWeight& w : file_weights) file_by_local.emplace(w.local, &w);
    bool same_names = file_by_local.size() == file_weights.size();
    for (const WeightRef& w : model_weights) same_names = same_names && file_by_local.count(local_part(w.name));
    for (std::size_t i = 0; i < model_weights.size(); ++i) {
      const FileWeight& source = same_names ? *file_by_local.at(local_part(model_weights[i].name)) : file_weights[i];
      assign(source.dataset, model_weights[i]);
    }
  }

  // A nested model's weights: its inner layers pair by their names (the
  // order Keras wrote them in depends on what was trainable then), and each
  // inner layer's weights as by_layer pairs them.
  void nested(const std::string& file_layer, const std::vector<FileLayer>& file_inner,
              const std::vector<std::pair<std::string, std::vector<WeightRef>>>& model_inner) {
    std::map<std::string, const FileLayer*> in_file;
    for (const FileLayer& l : file_inner) in_file.emplace(l.name, &l);
    std::set<std::string> used;
    for (const auto& [layer, weights] : model_inner) {
      auto it = in_file.find(layer);
      if (it == in_file.end()) {
        for (const WeightRef& w : weights)
          mismatch(w.name, str_cat("missing from group \"", file_layer, "\" of the file ", shape_str(w.variable.shape())));
        continue;
      }
      used.insert(layer);
      by_layer(layer, it->second->weights, layer, weights);
    }
    for (const FileLayer& l : file_inner)
      if (!used.count(l.name))
        for (const FileWeight& w : l.weights)
          mismatch(w.name, str_cat("in group \"", file_layer, "\" of the file but not in the model ",
                                   shape_str(w.dataset->shape())));
  }

  void throw_if_problems(const std::filesystem::path& path, const Module& model) const {
    if (problems_.empty()) return;
    std::string message = str_cat(path.string(), ": cannot load into model \"", model.name(), "\": ",
                                  problems_.size(), " mismatch", problems_.size() == 1 ? "" : "es", ":");
    for (const auto& p : problems_) message += "\n  " + p;
    throw FormatError(message);
  }

  // Reads every planned weight (all checks done).
  void apply() {
    for (const Assignment& a : plan_) ops::check_not_declared_constant(a.weight.variable.data(), "load_weights");
    for (Assignment& a : plan_) {
      Tensor& data = a.weight.variable.mutable_data();
      if (data.is_contiguous() && data.device().is_cpu()) {
        a.dataset->read(data.data<float>(), data.numel());
      } else {
        Tensor host = Tensor::empty(data.shape());
        a.dataset->read(host.data<float>(), host.numel());
        data.copy_(host);
      }
      report_.loaded.push_back(a.weight.name);
    }
  }

 private:
  const LoadOptions& options_;
  LoadReport& report_;
  std::vector<std::string> problems_;
  std::vector<Assignment> plan_;
};

// Splits a nested group's weights into its inner layers, in the order each
// first appears (Keras writes a layer's weights in their own order).
std::vector<FileLayer> split_nested(const FileLayer& layer) {
  std::vector<FileLayer> inner;
  std::map<std::string, std::size_t> index;
  for (const FileWeight& w : layer.weights) {
    const std::string part = layer_part(w.name);
    auto [it, added] = index.emplace(part, inner.size());
    if (added) inner.push_back({part, {}, false});
    inner[it->second].weights.push_back(w);
  }
  return inner;
}

std::vector<std::pair<std::string, std::vector<WeightRef>>> split_by_layer(const std::vector<WeightRef>& weights) {
  std::vector<std::pair<std::string, std::vector<WeightRef>>> layers;
  std::map<std::string, std::size_t> index;
  for (const WeightRef& w : weights) {
    auto [it, added] = index.emplace(layer_part(w.name), layers.size());
    if (added) layers.push_back({layer_part(w.name), {}});
    layers[it->second].second.push_back(w);
  }
  return layers;
}

void match_legacy_by_order(const std::vector<FileLayer>& file_layers, const std::vector<ModelLayer>& model_layers,
                           Matcher& matcher) {
  if (file_layers.size() != model_layers.size()) {
    std::string file_names, model_names;
    for (const auto& l : file_layers) file_names += (file_names.empty() ? "" : ", ") + l.name;
    for (const auto& l : model_layers) model_names += (model_names.empty() ? "" : ", ") + l.module->name();
    matcher.problem(str_cat("the file has ", file_layers.size(), " layer(s) with weights, the model ",
                            model_layers.size(), " (Keras pairs them by order; load by name to match a part)\n    file: ",
                            file_names.substr(0, 400), file_names.size() > 400 ? " ..." : "", "\n    model: ",
                            model_names.substr(0, 400), model_names.size() > 400 ? " ..." : ""));
    return;
  }
  for (std::size_t i = 0; i < file_layers.size(); ++i) {
    const FileLayer& f = file_layers[i];
    const ModelLayer& m = model_layers[i];
    if (!f.nested && !m.nested) {
      matcher.by_layer(f.name, f.weights, m.module->name(), m.weights);
    } else {
      matcher.nested(f.name, split_nested(f), split_by_layer(m.weights));
    }
  }
}

void match_legacy_by_name(const std::vector<FileLayer>& file_layers, const std::vector<ModelLayer>& model_layers,
                          Matcher& matcher) {
  std::map<std::string, FileLayer> in_file;
  for (const FileLayer& f : file_layers) {
    if (f.nested) {
      for (FileLayer& inner : split_nested(f)) in_file.emplace(inner.name, std::move(inner));
    } else {
      in_file.emplace(f.name, f);
    }
  }
  for (const ModelLayer& m : model_layers) {
    for (const auto& [layer, weights] : split_by_layer(m.weights)) {
      auto it = in_file.find(layer);
      if (it == in_file.end()) continue;
      matcher.by_layer(it->first, it->second.weights, layer, weights);
    }
  }
}

// ---- Keras 3 ----

class KerasV3Matcher {
 public:
  KerasV3Matcher(const hdf5::Group& root, Matcher& matcher) : root_(root), matcher_(matcher) {
    layers_key_ = root.has_group("layers") || !root.has_group("_layer_checkpoint_dependencies")
                      ? "layers"
                      : "_layer_checkpoint_dependencies";
  }

  void match_model(const Module& model) {
    if (is_keras_model(model) || !model.children().empty()) match_container(model, "");
    else match_leaf(model, "");
    report_unexpected("", 0);
  }

 private:
  void match_container(const Module& container, const std::string& prefix) {
    std::map<std::string, int> used;
    for (const Module* unit : keras_units(container)) {
      std::string key = keras_snake_case(unit->type_name());
      const int n = used[key]++;
      if (n > 0) key += "_" + std::to_string(n);
      const std::string path = prefix + layers_key_ + "/" + key;
      if (is_keras_model(*unit)) match_container(*unit, path + "/");
      else match_leaf(*unit, path + "/");
    }
  }

  void match_leaf(const Module& layer, const std::string& prefix) {
    const std::vector<WeightRef> weights = layer.weights();
    if (weights.empty()) return;
    const std::string vars = prefix + "vars";
    expected_.insert(vars);
    if (!root_.has_group(vars)) {
      for (const WeightRef& w : weights)
        matcher_.mismatch(w.name, str_cat("missing: the file has no group /", vars, " (layer \"", layer.name(),
                                          "\", class ", layer.type_name(), ")"));
      return;
    }
    const hdf5::Group group = root_.group(vars);
    const std::vector<std::string> members = group.members();
    if (members.size() != weights.size()) {
      matcher_.problem(str_cat("layer \"", layer.name(), "\" has ", weights.size(), " weight(s), the file's /", vars,
                               " holds ", members.size()));
      return;
    }
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const std::string name = std::to_string(i);
      if (!group.has_dataset(name)) {
        matcher_.mismatch(weights[i].name, str_cat("missing: the file has no dataset /", vars, "/", name));
        continue;
      }
      matcher_.assign(std::make_shared<hdf5::Dataset>(hdf5::open_dataset(group, name)), weights[i]);
    }
  }

  // Layer groups holding variables that no layer of the model claimed.
  void report_unexpected(const std::string& prefix, int depth) {
    const std::string layers = prefix + layers_key_;
    if (depth > 32 || !root_.has_group(layers)) return;
    for (const std::string& key : root_.group(layers).members()) {
      const std::string path = layers + "/" + key;
      if (!root_.has_group(path)) continue;
      const std::string vars = path + "/vars";
      if (!expected_.count(vars) && root_.has_group(vars) && !root_.group(vars).members().empty())
        matcher_.problem(str_cat("unexpected /", vars, " in the file (no layer of the model has that place)"));
      report_unexpected(path + "/", depth + 1);
    }
  }

  const hdf5::Group& root_;
  Matcher& matcher_;
  std::string layers_key_;
  std::set<std::string> expected_;
};

WeightFileFormat hdf5_layout(const hdf5::File& file) {
  const hdf5::Group root = file.root();
  if (legacy_root(file)) return WeightFileFormat::keras_h5_legacy;
  PETAL_CHECK(looks_like_keras_v3(root), FormatError, file.path().string(),
              ": an HDF5 file but not Keras weights (no layer_names attribute, no layers or vars group)");
  return WeightFileFormat::keras_h5_v3;
}

std::vector<const Module*> flatten_for_write(const Module& model) { return keras_units(model); }

}  // namespace

// ---- public ----

WeightFileFormat weight_file_format(const std::filesystem::path& path) {
  std::error_code ec;
  PETAL_CHECK(std::filesystem::exists(path, ec), IOError, path.string(), ": no such file");
  PETAL_CHECK(std::filesystem::is_regular_file(path, ec), IOError, path.string(), ": not a regular file");
  if (hdf5::has_hdf5_signature(path)) return hdf5_layout(hdf5::File::open(path));
  std::ifstream in(path, std::ios::binary);
  unsigned char head[9] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  PETAL_CHECK(in.gcount() == sizeof head && head[8] == '{', FormatError, path.string(),
              ": neither safetensors (8-byte length, then a JSON header) nor HDF5 (Keras .h5)");
  return WeightFileFormat::safetensors;
}

const char* weight_file_format_name(WeightFileFormat format) {
  switch (format) {
    case WeightFileFormat::safetensors: return "safetensors";
    case WeightFileFormat::keras_h5_legacy: return "Keras 2 HDF5 weights";
    case WeightFileFormat::keras_h5_v3: return "Keras 3 .weights.h5";
  }
  return "?";
}

bool is_keras_h5(WeightFileFormat format) { return format != WeightFileFormat::safetensors; }

bool keras_h5_available() { return hdf5::library_available(); }

std::string keras_snake_case(const std::string& class_name) {
  static const std::regex non_word(R"(\W+)");
  static const std::regex word_start("(.)([A-Z][a-z]+)");
  static const std::regex lower_upper("([a-z])([A-Z])");
  std::string name = std::regex_replace(class_name, non_word, "");
  name = std::regex_replace(name, word_start, "$1_$2");
  name = std::regex_replace(name, lower_upper, "$1_$2");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

LoadReport load_keras_h5(Module& model, const std::filesystem::path& path, const LoadOptions& options) {
  PETAL_CHECK(model.built(), ValueError, "load_weights: model \"", model.name(),
              "\" is not built yet (give it an input shape or call it once)");
  const hdf5::File file = hdf5::File::open(path);
  const hdf5::Group root = file.root();
  LoadReport report;
  Matcher matcher(options, report);
  if (const auto layers_root = legacy_root(file)) {
    for (const char* key : {"keras_version", "backend"})
      if (layers_root->has_attribute(key)) {
        const auto values = layers_root->string_list_attribute(key);
        if (values.size() == 1) report.metadata[key] = values[0];
      }
    const std::vector<FileLayer> file_layers = read_legacy_layers(*layers_root);
    const std::vector<ModelLayer> model_layers = weighted_model_layers(model);
    if (options.by_name) match_legacy_by_name(file_layers, model_layers, matcher);
    else match_legacy_by_order(file_layers, model_layers, matcher);
  } else {
    PETAL_CHECK(looks_like_keras_v3(root), FormatError, path.string(),
                ": an HDF5 file but not Keras weights (no layer_names attribute, no layers or vars group)");
    KerasV3Matcher(root, matcher).match_model(model);
  }
  matcher.throw_if_problems(path, model);
  matcher.apply();
  return report;
}

void save_keras_h5(const Module& model, const std::filesystem::path& path) {
  PETAL_CHECK(model.built(), ValueError, "save_weights: model \"", model.name(),
              "\" is not built yet (give it an input shape or call it once)");
  hdf5::File file = hdf5::File::create_in_memory(path);
  const hdf5::Group root = file.root();
  std::vector<std::string> layer_names;
  std::set<std::string> seen;
  for (const Module* unit : flatten_for_write(model)) {
    PETAL_CHECK(seen.insert(unit->name()).second, ValueError, "save_weights: two layers of model \"", model.name(),
                "\" are named \"", unit->name(), "\" (Keras files need distinct layer names)");
    layer_names.push_back(unit->name());
    const hdf5::Group group = root.create_group(unit->name());
    std::vector<std::string> weight_names;
    for (const WeightRef& w : legacy_order(unit->weights())) {
      const std::string weight_name = w.name + ":0";
      weight_names.push_back(weight_name);
      const Tensor values = w.variable.data().to(Device::cpu()).to(DType::Float32).contiguous();
      group.write_float_dataset(weight_name, values.shape(), values.data<float>());
    }
    group.write_string_list_attribute("weight_names", weight_names);
  }
  root.write_string_list_attribute("layer_names", layer_names);
  root.write_string_attribute("backend", "tensorflow");
  root.write_string_attribute("keras_version", "2.15.0");
  root.write_string_attribute("petal_version", "0.1.0");
  const std::vector<char> bytes = file.image();
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

std::size_t keras_weighted_layer_count(const Module& model) { return weighted_model_layers(model).size(); }

std::size_t keras_h5_weighted_layer_count(const std::filesystem::path& path) {
  const hdf5::File file = hdf5::File::open(path);
  const hdf5::Group root = file.root();
  if (const auto layers_root = legacy_root(file)) return read_legacy_layers(*layers_root).size();
  PETAL_CHECK(looks_like_keras_v3(root), FormatError, path.string(),
              ": an HDF5 file but not Keras weights (no layer_names attribute, no layers or vars group)");
  std::size_t count = 0;
  if (root.has_group("layers"))
    for (const std::string& key : root.group("layers").members())
      if (root.has_group("layers/" + key + "/vars") && !root.group("layers/" + key + "/vars").members().empty())
        ++count;
  return count;
}

}  // namespace petal::nn
