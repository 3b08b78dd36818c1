// Toy data for the guide's examples (docs/guide.md): small, seeded, made in
// memory, so each example runs in about a second and checks what it learned.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"

namespace guide {

struct ToyData {
  petal::Tensor x;  // float32 [n, ...]
  petal::Tensor y;  // int64 class indices [n]
};

// n points in `dims` dimensions (dims >= classes), scattered (stddev `noise`)
// around one centre per class: 2 on the axes d with d % classes == k, 0
// elsewhere. Calls with other seeds give a training and a test set of one
// problem.
inline ToyData toy_points(std::int64_t n, std::int64_t dims, std::int64_t classes, std::uint64_t seed,
                          double noise = 0.5) {
  std::vector<float> centres(static_cast<std::size_t>(classes * dims));
  for (std::int64_t k = 0; k < classes; ++k)
    for (std::int64_t d = 0; d < dims; ++d) centres[static_cast<std::size_t>(k * dims + d)] = d % classes == k ? 2.0f : 0.0f;
  petal::Generator rng(seed);
  std::vector<float> x(static_cast<std::size_t>(n * dims));
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = static_cast<std::int64_t>(rng.uniform_int(static_cast<std::uint64_t>(classes)));
    y[static_cast<std::size_t>(i)] = k;
    for (std::int64_t d = 0; d < dims; ++d)
      x[static_cast<std::size_t>(i * dims + d)] =
          centres[static_cast<std::size_t>(k * dims + d)] + static_cast<float>(noise * rng.normal());
  }
  return {petal::from_vector(x, {n, dims}), petal::from_vector(y, {n})};
}

// n images [size, size, 1] of two classes: brightness growing down the rows
// (class 0) or across the columns (class 1), plus noise.
inline ToyData toy_images(std::int64_t n, std::int64_t size, std::uint64_t seed) {
  petal::Generator rng(seed);
  std::vector<float> x(static_cast<std::size_t>(n * size * size));
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = static_cast<std::int64_t>(rng.uniform_int(2));
    y[static_cast<std::size_t>(i)] = k;
    for (std::int64_t r = 0; r < size; ++r)
      for (std::int64_t c = 0; c < size; ++c) {
        const double ramp = static_cast<double>(k == 0 ? r : c) / static_cast<double>(size - 1);
        x[static_cast<std::size_t>((i * size + r) * size + c)] = static_cast<float>(ramp - 0.5 + 0.3 * rng.normal());
      }
  }
  return {petal::from_vector(x, {n, size, size, 1}), petal::from_vector(y, {n})};
}

}  // namespace guide
