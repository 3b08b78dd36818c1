// What fit() returns: per-epoch figures, Keras's History.history.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace petal::nn {

// Figures of one epoch or one evaluation: "loss", "accuracy", "val_loss",
// "val_accuracy", "lr", ...
using Logs = std::map<std::string, double>;

struct History {
  std::vector<int> epochs;                              // 0-based epoch numbers
  std::map<std::string, std::vector<double>> values;  // one entry per epoch
  std::vector<double> epoch_seconds;
  bool stopped_early = false;
  std::string stop_reason;  // why training stopped before its last epoch
  // Training throughput: samples seen by train steps and the seconds spent in
  // them (validation excluded).
  std::int64_t train_samples = 0;
  double train_seconds = 0.0;
  double samples_per_second() const { return train_seconds > 0 ? static_cast<double>(train_samples) / train_seconds : 0.0; }

  void append(int epoch, const Logs& logs, double seconds);
  // The series (empty when never logged).
  const std::vector<double>& operator[](const std::string& key) const;
  // {"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
  //  "epoch_seconds": [...]} (loss/accuracy keys always present).
  std::string to_json() const;
  // Only the given series (missing ones as []), then "epoch_seconds".
  std::string to_json(const std::vector<std::string>& keys) const;

  // Reads to_json()'s form back (null values become NaN, empty series are
  // dropped); the epochs are numbered 0, 1, ... Throws FormatError naming
  // `source` on anything else. For resumed runs: checkpoints carry it.
  static History from_json(std::string_view text, std::string_view source);
  // Appends the epochs of a later fit (a resumed run) and adds up its
  // throughput figures.
  void extend(const History& later);
};

}  // namespace petal::nn
