#include "nn/initializers.hpp"

#include <cmath>

namespace petal::nn {

Fans compute_fans(const Shape& shape) {
  if (shape.empty()) return {1.0, 1.0};
  if (shape.size() == 1) return {static_cast<double>(shape[0]), static_cast<double>(shape[0])};
  double receptive = 1.0;
  for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive *= static_cast<double>(shape[i]);
  return {static_cast<double>(shape[shape.size() - 2]) * receptive,
          static_cast<double>(shape[shape.size() - 1]) * receptive};
}

Initializer glorot_uniform() {
  return [](const Shape& shape, Generator& gen) {
    Fans f = compute_fans(shape);
    const double limit = std::sqrt(6.0 / std::max(1.0, f.fan_in + f.fan_out));
    return uniform(shape, -limit, limit, gen);
  };
}

Initializer he_normal() {
  return [](const Shape& shape, Generator& gen) {
    Fans f = compute_fans(shape);
    // 0.8796... is the stddev of a standard normal truncated to [-2, 2].
    const double stddev = std::sqrt(2.0 / std::max(1.0, f.fan_in)) / 0.87962566103423978;
    Tensor t = Tensor::empty(shape, DType::Float32);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      double z;
      do z = gen.normal();
      while (std::abs(z) > 2.0);
      p[i] = static_cast<float>(z * stddev);
    }
    return t;
  };
}

Initializer zeros_initializer() {
  return [](const Shape& shape, Generator&) { return zeros(shape); };
}
Initializer ones_initializer() {
  return [](const Shape& shape, Generator&) { return ones(shape); };
}
Initializer constant_initializer(double value) {
  return [value](const Shape& shape, Generator&) { return full(shape, value); };
}

Initializer random_uniform(double minval, double maxval) {
  return [minval, maxval](const Shape& shape, Generator& gen) { return uniform(shape, minval, maxval, gen); };
}

}  // namespace petal::nn
