#include "nn/history.hpp"

#include <limits>

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

std::string History::to_json(const std::vector<std::string>& keys) const {
  std::string out = "{";
  for (const std::string& key : keys) out += json::quote(key) + ": " + json::number_array((*this)[key]) + ", ";
  return out + "\"epoch_seconds\": " + json::number_array(epoch_seconds) + "}";
}

}  // namespace petal::nn
