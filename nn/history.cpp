#include "nn/history.hpp"

#include <limits>

#include "core/error.hpp"
#include "nn/json.hpp"

namespace petal::nn {

void History::append(int epoch, const Logs& logs, double seconds) {
  const std::size_t before = epochs.size();
  epochs.push_back(epoch);
  epoch_seconds.push_back(seconds);
  for (const auto& [key, value] : logs) {
    auto& series = values[key];
    // A key that appears late is padded with NaN (written as null) so that
    // every series lines up with `epochs`.
    series.resize(before, std::numeric_limits<double>::quiet_NaN());
    series.push_back(value);
  }
}

const std::vector<double>& History::operator[](const std::string& key) const {
  static const std::vector<double> empty;
  auto it = values.find(key);
  return it == values.end() ? empty : it->second;
}

std::string History::to_json() const {
  std::string out = "{";
  bool first = true;
  auto put = [&](const std::string& key, const std::vector<double>& series) {
    out += (first ? "" : ", ") + json::quote(key) + ": " + json::number_array(series);
    first = false;
  };
  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"}) put(key, (*this)[key]);
  for (const auto& [key, series] : values)
    if (key != "loss" && key != "accuracy" && key != "val_loss" && key != "val_accuracy") put(key, series);
  put("epoch_seconds", epoch_seconds);
  return out + "}";
}

}  // namespace petal::nn

namespace petal::nn {

History History::from_json(std::string_view text, std::string_view source) {
  const json::Value doc = json::parse(text, source);
  History h;
  const std::string what = str_cat(source, " history");
  auto numbers = [&](const json::Value& array, const std::string& key) {
    std::vector<double> series;
    for (const json::Value& v : array.as_array(str_cat(what, " \"", key, "\"")))
      series.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.as_number(str_cat(what, " \"", key, "\"")));
    return series;
  };
  const json::Value* seconds = doc.find("epoch_seconds");
  PETAL_CHECK(doc.is_object() && seconds != nullptr, FormatError, what, ": not an object with \"epoch_seconds\"");
  h.epoch_seconds = numbers(*seconds, "epoch_seconds");
  for (std::size_t e = 0; e < h.epoch_seconds.size(); ++e) h.epochs.push_back(static_cast<int>(e));
  for (const auto& [key, value] : doc.as_object(what)) {
    if (key == "epoch_seconds") continue;
    std::vector<double> series = numbers(value, key);
    if (series.empty()) continue;
    PETAL_CHECK(series.size() == h.epochs.size(), FormatError, what, ": \"", key, "\" has ", series.size(),
                " values for ", h.epochs.size(), " epochs");
    h.values[key] = std::move(series);
  }
  return h;
}

void History::extend(const History& later) {
  const std::size_t before = epochs.size();
  for (std::size_t i = 0; i < later.epochs.size(); ++i) {
    epochs.push_back(later.epochs[i]);
    epoch_seconds.push_back(i < later.epoch_seconds.size() ? later.epoch_seconds[i] : 0.0);
  }
  for (const auto& [key, series] : later.values) {
    auto& mine = values[key];
    mine.resize(before, std::numeric_limits<double>::quiet_NaN());
    mine.insert(mine.end(), series.begin(), series.end());
  }
  for (auto& [key, series] : values) series.resize(epochs.size(), std::numeric_limits<double>::quiet_NaN());
  stopped_early = later.stopped_early;
  stop_reason = later.stop_reason;
  train_samples += later.train_samples;
  train_seconds += later.train_seconds;
}

std::string History::to_json(const std::vector<std::string>& keys) const {
  std::string out = "{";
  for (const std::string& key : keys) out += json::quote(key) + ": " + json::number_array((*this)[key]) + ", ";
  return out + "\"epoch_seconds\": " + json::number_array(epoch_seconds) + "}";
}

}  // namespace petal::nn
