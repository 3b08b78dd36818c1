#include "nn/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

namespace petal::nn {

namespace {

constexpr int kBarWidth = 30;

std::string fixed4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

std::string format_duration(double seconds) {
  char buf[48];
  if (seconds < 1.0) std::snprintf(buf, sizeof buf, "%.0fms", seconds * 1000.0);
  else if (seconds < 60.0) std::snprintf(buf, sizeof buf, "%.0fs", seconds);
  else if (seconds < 3600.0) std::snprintf(buf, sizeof buf, "%dm %ds", static_cast<int>(seconds / 60), static_cast<int>(std::fmod(seconds, 60.0)));
  else std::snprintf(buf, sizeof buf, "%dh %dm", static_cast<int>(seconds / 3600), static_cast<int>(std::fmod(seconds, 3600.0) / 60));
  return buf;
}

std::string format_logs(const Logs& logs) {
  // Keras's order: loss, accuracy, other metrics, then the same with val_.
  std::vector<std::string> order = {"loss", "accuracy"};
  for (const auto& [k, v] : logs)
    if (k != "loss" && k != "accuracy" && k.rfind("val_", 0) != 0 && k != "lr") order.push_back(k);
  const std::size_t train_keys = order.size();
  for (std::size_t i = 0; i < train_keys; ++i) order.push_back("val_" + order[i]);
  std::string out;
  for (const std::string& k : order) {
    auto it = logs.find(k);
    if (it != logs.end()) out += " - " + k + ": " + fixed4(it->second);
  }
  return out;
}

ProgressPrinter::ProgressPrinter(std::ostream& out, Verbosity verbosity, int epochs)
    : out_(out), mode_(verbosity), epochs_(epochs) {
  if (mode_ == Verbosity::Auto)
    mode_ = (&out == &std::cout && ::isatty(STDOUT_FILENO)) ? Verbosity::Bar : Verbosity::Lines;
}

void ProgressPrinter::epoch_begin(int epoch, std::int64_t steps) {
  epoch_ = epoch;
  steps_ = steps;
  start_ = last_draw_ = std::chrono::steady_clock::now();
  last_width_ = 0;
  if (mode_ == Verbosity::Bar) out_ << "Epoch " << epoch + 1 << "/" << epochs_ << "\n" << std::flush;
}

void ProgressPrinter::step(std::int64_t done, const Logs& logs) {
  if (mode_ != Verbosity::Bar) return;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most 20 times a second, and always for the last step.
  if (now - last_draw_ < std::chrono::milliseconds(50) && done != steps_) return;
  last_draw_ = now;
  draw_bar(done, logs, false, std::chrono::duration<double>(now - start_).count());
}

void ProgressPrinter::draw_bar(std::int64_t done, const Logs& logs, bool final, double seconds) {
  std::string line;
  if (steps_ > 0) {
    const std::string total = std::to_string(steps_);
    std::string count = std::to_string(done);
    line = std::string(total.size() > count.size() ? total.size() - count.size() : 0, ' ') + count + "/" + total + " [";
    const int filled = static_cast<int>(kBarWidth * std::min<std::int64_t>(done, steps_) / steps_);
    if (filled > 0) line += std::string(filled - 1, '=') + (done >= steps_ ? "=" : ">");
    line += std::string(kBarWidth - std::max(filled, 0), '.') + "]";
  } else {
    line = std::to_string(done) + "/Unknown";
  }
  const double per_step = done > 0 ? seconds / static_cast<double>(done) : 0.0;
  if (final) line += " - " + format_duration(seconds) + " " + format_duration(per_step) + "/step";
  else if (steps_ > 0) line += " - ETA: " + format_duration(per_step * static_cast<double>(steps_ - done));
  line += format_logs(logs);
  const std::size_t width = line.size();
  if (width < last_width_) line += std::string(last_width_ - width, ' ');
  last_width_ = width;
  out_ << "\r" << line << (final ? "\n" : "") << std::flush;
}

void ProgressPrinter::epoch_end(std::int64_t done, double seconds, const Logs& logs) {
  if (mode_ == Verbosity::Quiet) return;
  if (mode_ == Verbosity::Bar) {
    if (steps_ < 0) steps_ = done;
    draw_bar(done, logs, true, seconds);
    return;
  }
  const double per_step = done > 0 ? seconds / static_cast<double>(done) : 0.0;
  out_ << "Epoch " << epoch_ + 1 << "/" << epochs_ << " - " << done << "/" << (steps_ > 0 ? steps_ : done) << " - "
       << format_duration(seconds) << " - " << format_duration(per_step) << "/step" << format_logs(logs) << "\n"
       << std::flush;
}

void ProgressPrinter::note(const std::string& message) {
  if (mode_ != Verbosity::Quiet) out_ << message << "\n" << std::flush;
}

}  // namespace petal::nn
