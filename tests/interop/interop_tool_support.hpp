// Shared by the petal sides of the interop checks (keras_weights_tool,
// onnx_export_tool): their "--key value" arguments, raw float32 input files,
// weights of a trained size, and the forward pass both tools run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/module.hpp"
#include "nn/nn.hpp"

namespace petal::interop {

// Exactly `count` float32 values (native byte order, as numpy's tofile writes).
inline std::vector<float> read_floats(const std::string& path, std::size_t count) {
  std::vector<float> values(count);
  std::ifstream in(path, std::ios::binary);
  PETAL_CHECK(in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(count * sizeof(float))) &&
                  in.peek() == std::char_traits<char>::eof(),
              IOError, path, ": expected exactly ", count, " float32 values");
  return values;
}

// Values of the size a trained network has, so outputs are not saturated:
// He-like kernels, gamma and variances in [0.5, 1.5), the rest N(0, 0.1).
inline void randomize_like_trained(nn::Module& model, std::uint64_t seed) {
  manual_seed(seed);
  for (nn::WeightRef w : model.weights()) {
    Tensor& t = w.variable.mutable_data();
    const std::string local = w.name.substr(w.name.rfind('/') + 1);
    const double fan_in = static_cast<double>(t.numel() / t.shape().back());
    if (local == "gamma" || local == "moving_variance") t.copy_(uniform(t.shape(), 0.5, 1.5));
    else if (local == "kernel" || local == "depthwise_kernel") t.copy_(normal(t.shape(), 0, 1.0 / std::sqrt(fan_in)));
    else t.copy_(normal(t.shape(), 0, 0.1));
  }
}

// The tools' arguments: "--key value" pairs.
class ToolArgs {
 public:
  ToolArgs(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; i += 2) values_[argv[i]] = argv[i + 1];
  }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  // The value of key, else fallback; ValueError when both are missing.
  std::string operator()(const std::string& key, const std::string& fallback = "") const {
    auto it = values_.find(key);
    if (it != values_.end()) return it->second;
    PETAL_CHECK(!fallback.empty(), ValueError, "missing ", key);
    return fallback;
  }

 private:
  std::map<std::string, std::string> values_;
};

// What both tools do with their model: build it for --size x --size x 3
// images in inference mode, load --weights (or make --random SEED ones), run
// it on --batch images read from --input and write the raw float32 output to
// --output.
inline void run_on_input_file(nn::Module& model, const ToolArgs& arg) {
  const std::int64_t size = std::stoll(arg("--size"));
  const std::int64_t batch = std::stoll(arg("--batch"));
  model.build({size, size, 3});
  model.eval();
  if (arg.has("--weights")) nn::load_weights(model, arg("--weights"));
  else randomize_like_trained(model, std::stoull(arg("--random")));
  const std::vector<float> input = read_floats(arg("--input"), static_cast<std::size_t>(batch * size * size * 3));
  Tensor x = Tensor::empty({batch, size, size, 3});
  std::copy(input.begin(), input.end(), x.data<float>());
  const Tensor y = model(ag::Variable(x)).data().contiguous();
  std::ofstream out(arg("--output"), std::ios::binary);
  out.write(reinterpret_cast<const char*>(y.data<float>()), static_cast<std::streamsize>(y.numel() * sizeof(float)));
}

}  // namespace petal::interop
