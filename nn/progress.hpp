// Training progress in Keras's style. On a terminal, a bar per epoch that
// redraws in place:
//   Epoch 1/10
//   12/43 [======>.......................] - ETA: 9s - loss: 1.2345 - accuracy: 0.5000
// ending as
//   43/43 [==============================] - 12s 280ms/step - loss: ... - val_accuracy: ...
// Elsewhere (a log file, a pipe) exactly one line per epoch:
//   Epoch 1/10 - 43/43 - 12s - 280ms/step - loss: 1.2345 - accuracy: 0.5000 - val_loss: ...
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>

#include "nn/history.hpp"

namespace petal::nn {

enum class Verbosity {
  Auto,   // Bar when the stream is standard output on a terminal, else Lines
  Bar,
  Lines,
  Quiet,
};

class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& out, Verbosity verbosity, int epochs);
  Verbosity mode() const { return mode_; }

  void epoch_begin(int epoch, std::int64_t steps);  // steps -1 when unknown
  void step(std::int64_t done, const Logs& logs);
  void epoch_end(std::int64_t done, double seconds, const Logs& logs);
  // A line of its own (e.g. "feature cache: on"), on any non-quiet mode.
  void note(const std::string& message);

 private:
  void draw_bar(std::int64_t done, const Logs& logs, bool final, double seconds);

  std::ostream& out_;
  Verbosity mode_;
  int epochs_;
  int epoch_ = 0;
  std::int64_t steps_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::size_t last_width_ = 0;
};

// " - loss: 1.2345 - accuracy: 0.5000 - val_loss: ..." in Keras's key order.
std::string format_logs(const Logs& logs);
// "12s", "1m 5s", "280ms"
std::string format_duration(double seconds);

}  // namespace petal::nn
