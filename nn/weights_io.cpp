#include "nn/weights_io.hpp"

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <algorithm>

#include "core/error.hpp"
#include "core/random.hpp"
#include "kernels/ops_constant.hpp"
#include "nn/keras_h5.hpp"

namespace petal::nn {

namespace {

constexpr const char* kOptimizerPrefix = "optimizer/";

std::vector<WeightRef> built_weights(const Module& model, const char* op) {
  PETAL_CHECK(model.built(), ValueError, op, ": model \"", model.name(),
              "\" is not built yet (give it an input shape or call it once)");
  std::vector<WeightRef> weights = model.weights();
  std::set<std::string> names;
  for (const auto& w : weights)
    PETAL_CHECK(names.insert(w.path).second, ValueError, op, ": two weights of model \"", model.name(),
                "\" have the path \"", w.path, "\" (give the layers distinct names)");
  return weights;
}

std::string encode_rng(const Generator::State& st) {
  std::uint64_t spare_bits = 0;
  std::memcpy(&spare_bits, &st.spare, sizeof spare_bits);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %d %016" PRIx64,
                st.s[0], st.s[1], st.s[2], st.s[3], st.has_spare ? 1 : 0, spare_bits);
  return buf;
}

// Four 64-bit hex words, the spare-normal flag (0 or 1) and the spare's bits,
// separated by single spaces, exactly as encode_rng writes them: sscanf would
// accept signs, overflow (saturating) and trailing text.
Generator::State decode_rng(const std::string& text, const std::string& file) {
  auto bad = [&]() -> FormatError {
    return FormatError(str_cat(file, ": metadata rng_state \"", text,
                               "\" is not 4 hex state words, a 0/1 flag and a hex spare"));
  };
  std::uint64_t fields[6] = {};
  const char* p = text.data();
  const char* const end = text.data() + text.size();
  for (int i = 0; i < 6; ++i) {
    if (i > 0) {
      if (p == end || *p != ' ') throw bad();
      ++p;
    }
    if (p == end || *p == '+' || *p == '-') throw bad();
    auto [next, ec] = std::from_chars(p, end, fields[i], i == 4 ? 10 : 16);
    if (ec != std::errc()) throw bad();
    p = next;
  }
  if (p != end || fields[4] > 1) throw bad();
  Generator::State st{};
  for (int i = 0; i < 4; ++i) st.s[i] = fields[i];
  st.has_spare = fields[4] != 0;
  std::memcpy(&st.spare, &fields[5], sizeof fields[5]);
  return st;
}

const std::string& required(const Metadata& m, const std::string& key, const std::string& file) {
  auto it = m.find(key);
  PETAL_CHECK(it != m.end(), FormatError, file, ": checkpoint metadata lacks \"", key, "\"");
  return it->second;
}

// A non-negative integer no larger than max_value: out-of-range values are
// rejected, never truncated by a cast.
std::int64_t required_int(const Metadata& m, const std::string& key, const std::string& file,
                          std::int64_t max_value = std::numeric_limits<std::int64_t>::max()) {
  const std::string& text = required(m, key, file);
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  PETAL_CHECK(ec == std::errc() && ptr == text.data() + text.size() && value >= 0 && value <= max_value,
              FormatError, file, ": checkpoint metadata \"", key, "\" = \"", text,
              "\" is not an integer in [0, ", max_value, "]");
  return value;
}

// "<parameter>/<slot>" with the parameter renamed through `names` (left as
// it is when absent).
std::string rekey_slot(const std::string& key, const std::map<std::string, std::string>& names) {
  const auto slash = key.rfind('/');
  if (slash == std::string::npos) return key;
  const auto it = names.find(key.substr(0, slash));
  return it == names.end() ? key : it->second + key.substr(slash);
}

}  // namespace

bool keyed_by_path(const std::vector<WeightRef>& weights, const SafetensorsReader& reader) {
  std::size_t by_path = 0, by_name = 0;
  for (const WeightRef& w : weights) {
    by_path += reader.find(w.path) != nullptr;
    by_name += reader.find(w.name) != nullptr;
  }
  return by_path >= by_name;
}

void save_weights(const Module& model, const std::filesystem::path& path, const Metadata& metadata) {
  if (path.extension() == ".h5") return save_keras_h5(model, path);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& w : built_weights(model, "save_weights")) tensors.emplace_back(w.path, w.variable.data());
  write_safetensors(path, tensors, metadata);
}

LoadReport load_weights(Module& model, const std::filesystem::path& path, const LoadOptions& options) {
  std::vector<WeightRef> weights = built_weights(model, "load_weights");
  if (is_keras_h5(weight_file_format(path))) return load_keras_h5(model, path, options);
  SafetensorsReader reader(path);
  LoadReport report;
  report.metadata = reader.metadata();
  const bool by_path = keyed_by_path(weights, reader);
  for (WeightRef& w : weights)
    if (!by_path) w.path = w.name;  // files written before structural paths
  std::vector<std::string> problems;
  std::vector<std::pair<const SafetensorsEntry*, WeightRef*>> plan;
  std::set<std::string> model_names;
  for (WeightRef& w : weights) {
    model_names.insert(w.path);
    const SafetensorsEntry* e = reader.find(w.path);
    if (!e) {
      if (options.by_name) continue;
      if (options.skip_mismatch) report.skipped.push_back(w.path + ": not in the file");
      else problems.push_back(str_cat("missing \"", w.path, "\" ", shape_str(w.variable.shape())));
      continue;
    }
    std::string mismatch;
    if (e->shape != w.variable.shape())
      mismatch = str_cat("shape ", shape_str(e->shape), " in the file, ", shape_str(w.variable.shape()), " in the model");
    else if (safetensors_dtype(e->dtype) != w.variable.dtype())
      mismatch = str_cat("dtype ", e->dtype, " in the file, ", dtype_name(w.variable.dtype()), " in the model");
    if (!mismatch.empty()) {
      if (options.skip_mismatch) report.skipped.push_back(w.path + ": " + mismatch);
      else problems.push_back(str_cat("\"", w.path, "\": ", mismatch));
      continue;
    }
    plan.emplace_back(e, &w);
  }
  if (!options.by_name) {
    for (const auto& e : reader.entries()) {
      if (e.name.rfind(kOptimizerPrefix, 0) == 0 || model_names.count(e.name)) continue;
      if (options.skip_mismatch) report.skipped.push_back(e.name + ": not in the model");
      else problems.push_back(str_cat("unexpected \"", e.name, "\" ", shape_str(e.shape), " (not in the model)"));
    }
  }
  if (!problems.empty()) {
    std::string message = str_cat(path.string(), ": cannot load into model \"", model.name(), "\": ",
                                  problems.size(), " mismatch", problems.size() == 1 ? "" : "es", ":");
    for (const auto& p : problems) message += "\n  " + p;
    throw FormatError(message);
  }
  for (const auto& [entry, w] : plan) ops::check_not_declared_constant(w->variable.data(), "load_weights");
  for (auto& [entry, w] : plan) {
    Tensor& data = w->variable.mutable_data();
    if (data.is_contiguous() && data.device().is_cpu()) {
      reader.read_into(*entry, data);
    } else {
      data.copy_(reader.read(*entry));
    }
    report.loaded.push_back(w->path);
  }
  return report;
}

void save_checkpoint(const std::filesystem::path& path, const Module& model, const Optimizer& optimizer,
                     int epochs_completed, const Metadata& extra) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  // Slots are keyed by the parameter's display name in the optimizer and by
  // its path in the file, like the weights.
  std::map<std::string, std::string> path_of;
  for (const auto& w : built_weights(model, "save_checkpoint")) {
    tensors.emplace_back(w.path, w.variable.data());
    path_of[w.name] = w.path;
  }
  for (auto& [key, slot] : optimizer.state()) tensors.emplace_back(kOptimizerPrefix + rekey_slot(key, path_of), slot);
  Metadata meta = extra;
  meta["petal_checkpoint"] = "1";
  meta["epoch"] = std::to_string(epochs_completed);
  meta["optimizer"] = optimizer.name();
  meta["optimizer_iterations"] = std::to_string(optimizer.iterations());
  char lr[64];
  std::snprintf(lr, sizeof lr, "%.17g", optimizer.learning_rate());
  meta["learning_rate"] = lr;
  meta["rng_state"] = encode_rng(default_generator().state());
  write_safetensors(path, tensors, meta);
}

int load_checkpoint(const std::filesystem::path& path, Module& model, Optimizer& optimizer) {
  const std::string file = path.string();
  SafetensorsReader reader(path);
  const Metadata& meta = reader.metadata();
  PETAL_CHECK(meta.count("petal_checkpoint"), FormatError, file, ": not a petal checkpoint (no petal_checkpoint metadata)");
  PETAL_CHECK(required(meta, "optimizer", file) == optimizer.name(), ValueError, file, ": checkpoint holds ",
              meta.at("optimizer"), " state, the optimizer is ", optimizer.name());
  const int epoch = static_cast<int>(required_int(meta, "epoch", file, std::numeric_limits<int>::max()));
  const std::int64_t iterations = required_int(meta, "optimizer_iterations", file);
  const Generator::State rng = decode_rng(required(meta, "rng_state", file), file);
  load_weights(model, path);
  std::map<std::string, std::string> name_of;
  const std::vector<WeightRef> weights = model.weights();
  if (keyed_by_path(weights, reader))
    for (const auto& w : weights) name_of[w.path] = w.name;
  std::vector<std::pair<std::string, Tensor>> slots;
  const std::string prefix = kOptimizerPrefix;
  for (const auto& e : reader.entries())
    if (e.name.rfind(prefix, 0) == 0) slots.emplace_back(rekey_slot(e.name.substr(prefix.size()), name_of), reader.read(e));
  optimizer.load_state(slots, iterations);
  default_generator().set_state(rng);
  return epoch;
}

namespace {

constexpr std::string_view kEpochTag = "{epoch}";

// The epoch number of `name` in a file-name pattern holding "{epoch}" once.
std::optional<int> epoch_of(const std::string& name, const std::string& prefix, const std::string& suffix) {
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size() - suffix.size();
  if (*first == '0' && last - first > 1) return std::nullopt;  // ModelCheckpoint never writes leading zeros
  int epoch = 0;
  auto [ptr, ec] = std::from_chars(first, last, epoch);
  if (ec != std::errc() || ptr != last || epoch < 0) return std::nullopt;
  return epoch;
}

}  // namespace

std::vector<std::pair<int, std::filesystem::path>> checkpoint_files(const std::filesystem::path& pattern) {
  std::vector<std::pair<int, std::filesystem::path>> files;
  const std::string file_pattern = pattern.filename().string();
  const auto tag = file_pattern.find(kEpochTag);
  std::error_code ec;
  if (tag == std::string::npos) {
    if (std::filesystem::is_regular_file(pattern, ec)) files.emplace_back(-1, pattern);
    return files;
  }
  const std::string prefix = file_pattern.substr(0, tag), suffix = file_pattern.substr(tag + kEpochTag.size());
  PETAL_CHECK(suffix.find(kEpochTag) == std::string::npos, ValueError, "checkpoint pattern ", pattern.string(),
              ": \"{epoch}\" appears more than once in the file name");
  const std::filesystem::path folder = pattern.parent_path().empty() ? "." : pattern.parent_path();
  if (!std::filesystem::is_directory(folder, ec)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const std::optional<int> epoch = epoch_of(entry.path().filename().string(), prefix, suffix);
    if (epoch && entry.is_regular_file(ec)) files.emplace_back(*epoch, pattern.parent_path() / entry.path().filename());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& pattern,
                                                       std::vector<std::string>* passed_over) {
  const auto files = checkpoint_files(pattern);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    const auto& [epoch, path] = *it;
    try {
      SafetensorsReader reader(path);  // checks the header and every tensor's extent against the file size
      const Metadata& meta = reader.metadata();
      PETAL_CHECK(meta.count("petal_checkpoint"), FormatError, "not a petal checkpoint");
      const std::int64_t saved_epoch = required_int(meta, "epoch", path.string());
      PETAL_CHECK(epoch < 0 || saved_epoch == epoch, FormatError, "holds epoch ", saved_epoch, ", its name says ", epoch);
      return path;
    } catch (const Error& e) {
      if (passed_over) passed_over->push_back(str_cat(path.string(), ": ", e.what()));
    }
  }
  return std::nullopt;
}

History checkpoint_history(const std::filesystem::path& path) {
  SafetensorsReader reader(path);
  const auto it = reader.metadata().find("history");
  if (it == reader.metadata().end()) return {};
  History history = History::from_json(it->second, path.string() + " metadata");
  // Throughput figures are informative: a file without them (or with bad ones) still resumes.
  const auto samples = reader.metadata().find("history_train_samples");
  const auto seconds = reader.metadata().find("history_train_seconds");
  if (samples != reader.metadata().end() && seconds != reader.metadata().end()) {
    std::int64_t n = 0;
    double s = 0;
    const auto [p1, e1] = std::from_chars(samples->second.data(), samples->second.data() + samples->second.size(), n);
    const auto [p2, e2] = std::from_chars(seconds->second.data(), seconds->second.data() + seconds->second.size(), s);
    if (e1 == std::errc() && e2 == std::errc() && n >= 0 && s >= 0) {
      history.train_samples = n;
      history.train_seconds = s;
    }
  }
  return history;
}

}  // namespace petal::nn
