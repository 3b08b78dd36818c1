// Weight initialisers with Keras's definitions. Fans follow Keras: for a
// kernel of shape [..., in, out] the receptive field is the product of the
// leading axes, fan_in = in * receptive, fan_out = out * receptive.
#pragma once

#include <functional>

#include "core/random.hpp"
#include "core/tensor.hpp"

namespace petal::nn {

using Initializer = std::function<Tensor(const Shape& shape, Generator& gen)>;

// Uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)). Keras's default for kernels.
Initializer glorot_uniform();
// Truncated normal (resampled beyond 2 stddev), stddev = sqrt(2 / fan_in) / 0.8796...
// so the truncated distribution has variance 2 / fan_in, as in Keras.
Initializer he_normal();
Initializer zeros_initializer();
Initializer ones_initializer();
Initializer constant_initializer(double value);
// Uniform in [minval, maxval] (Keras RandomUniform; Embedding uses -0.05, 0.05).
Initializer random_uniform(double minval = -0.05, double maxval = 0.05);

struct Fans {
  double fan_in, fan_out;
};
Fans compute_fans(const Shape& shape);

}  // namespace petal::nn
