#include "nn/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/atomic_file.hpp"

namespace petal::nn {

namespace {

constexpr double kPanelW = 420, kPanelH = 300, kMarginL = 60, kMarginR = 20, kMarginT = 40, kMarginB = 50;
constexpr const char* kTrainColor = "#1f77b4";
constexpr const char* kValColor = "#ff7f0e";

std::string fmt(double v, const char* f = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// One panel: axes, ticks and up to two series, with its top-left at (x0, y0).
std::string panel(double x0, double y0, const std::string& name, const std::vector<double>& train,
                  const std::vector<double>& val) {
  std::vector<double> all;
  for (double v : train) if (std::isfinite(v)) all.push_back(v);
  for (double v : val) if (std::isfinite(v)) all.push_back(v);
  double lo = all.empty() ? 0.0 : *std::min_element(all.begin(), all.end());
  double hi = all.empty() ? 1.0 : *std::max_element(all.begin(), all.end());
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const double pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const std::size_t n = std::max(train.size(), val.size());
  const double px = x0 + kMarginL, py = y0 + kMarginT;
  const double pw = kPanelW - kMarginL - kMarginR, ph = kPanelH - kMarginT - kMarginB;
  auto X = [&](std::size_t i) { return px + (n <= 1 ? pw / 2 : pw * static_cast<double>(i) / static_cast<double>(n - 1)); };
  auto Y = [&](double v) { return py + ph * (1.0 - (v - lo) / (hi - lo)); };

  std::string s;
  s += "<text x=\"" + fmt(px + pw / 2) + "\" y=\"" + fmt(y0 + 24) + "\" text-anchor=\"middle\" font-size=\"15\">" +
       escape(name) + "</text>\n";
  s += "<rect x=\"" + fmt(px) + "\" y=\"" + fmt(py) + "\" width=\"" + fmt(pw) + "\" height=\"" + fmt(ph) +
       "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double v = lo + (hi - lo) * t / 4.0;
    const double y = Y(v);
    s += "<line x1=\"" + fmt(px) + "\" x2=\"" + fmt(px + pw) + "\" y1=\"" + fmt(y) + "\" y2=\"" + fmt(y) +
         "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + fmt(px - 6) + "\" y=\"" + fmt(y + 4) + "\" text-anchor=\"end\" font-size=\"11\">" +
         fmt(v, "%.3g") + "</text>\n";
  }
  const std::size_t every = std::max<std::size_t>(1, (n + 9) / 10);
  for (std::size_t i = 0; i < n; i += every)
    s += "<text x=\"" + fmt(X(i)) + "\" y=\"" + fmt(py + ph + 16) + "\" text-anchor=\"middle\" font-size=\"11\">" +
         std::to_string(i + 1) + "</text>\n";
  s += "<text x=\"" + fmt(px + pw / 2) + "\" y=\"" + fmt(py + ph + 36) +
       "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";
  auto series = [&](const std::vector<double>& v, const char* color, const char* label, double ly) {
    if (v.empty()) return;
    std::string points;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (std::isfinite(v[i])) points += fmt(X(i)) + "," + fmt(Y(v[i])) + " ";
    s += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\" points=\"" + points + "\"/>\n";
    for (std::size_t i = 0; i < v.size(); ++i)
      if (std::isfinite(v[i]))
        s += "<circle cx=\"" + fmt(X(i)) + "\" cy=\"" + fmt(Y(v[i])) + "\" r=\"2.5\" fill=\"" + color + "\"/>\n";
    s += "<line x1=\"" + fmt(px + pw - 110) + "\" x2=\"" + fmt(px + pw - 90) + "\" y1=\"" + fmt(ly) + "\" y2=\"" +
         fmt(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    s += "<text x=\"" + fmt(px + pw - 85) + "\" y=\"" + fmt(ly + 4) + "\" font-size=\"11\">" + label + "</text>\n";
  };
  series(train, kTrainColor, "training", py + 14);
  series(val, kValColor, "validation", py + 30);
  return s;
}

}  // namespace

std::string training_curves_svg(const History& history, const std::string& title) {
  const double top = title.empty() ? 0 : 30;
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                  fmt(2 * kPanelW) + "\" height=\"" + fmt(kPanelH + top) +
                  "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty())
    s += "<text x=\"" + fmt(kPanelW) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">" + escape(title) + "</text>\n";
  s += panel(0, top, "loss", history["loss"], history["val_loss"]);
  s += panel(kPanelW, top, "accuracy", history["accuracy"], history["val_accuracy"]);
  return s + "</svg>\n";
}

void write_training_curves(const History& history, const std::filesystem::path& path, const std::string& title) {
  write_text_file_atomic(path, training_curves_svg(history, title));
}

}  // namespace petal::nn
