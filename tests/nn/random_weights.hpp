// Seeded random tensors and weights for the nn test suites.
#pragma once

#include <cstdint>
#include <string>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "nn/module.hpp"

namespace petal::test {

inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator gen(seed);
  return uniform(shape, low, high, gen);
}

// Every weight random, so that each one changes the outputs: biases (zero
// by default), beta and moving means in [-0.5, 0.5], gammas and moving
// variances in [0.5, 1.5]; each weight from its own seed, counting up.
inline void randomise(nn::Module& model, std::uint64_t seed) {
  for (auto w : model.weights()) {
    const std::string& n = w.name;
    const bool positive = n.find("gamma") != std::string::npos || n.find("moving_variance") != std::string::npos;
    w.variable.mutable_data().copy_(
        random_tensor(w.variable.shape(), seed++, positive ? 0.5 : -0.5, positive ? 1.5 : 0.5));
  }
}

}  // namespace petal::test
