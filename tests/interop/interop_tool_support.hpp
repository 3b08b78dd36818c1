// Shared by the petal sides of the interop checks (keras_weights_tool,
// onnx_export_tool): raw float32 input files and weights of a trained size.
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/module.hpp"

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

}  // namespace petal::interop
