// LayerNormalization (Keras): normalises each sample over `axis` with its
// own mean and biased variance, then scales by gamma and shifts by beta.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "nn/initializers.hpp"
#include "nn/module.hpp"

namespace petal::nn {

struct LayerNormOptions {
  // Keras axes: they count the batch axis (-1 the last; the batch axis itself
  // is refused). Several axes normalise over all of them together.
  std::vector<std::int64_t> axis = {-1};
  double epsilon = 1e-3;
  bool center = true;  // beta
  bool scale = true;   // gamma
  std::string name = "";
  Initializer gamma_initializer = ones_initializer();
  Initializer beta_initializer = zeros_initializer();
  Generator* generator = nullptr;
};

// y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, the statistics
// over `axis` of each sample (training and inference alike). Weights gamma
// then beta (Keras's order), each of shape [size of each normalised axis].
class LayerNormalization : public Module {
 public:
  explicit LayerNormalization(LayerNormOptions options = {});
  const LayerNormOptions& options() const { return options_; }
  const ag::Variable& gamma() const { return gamma_; }  // undefined without scale
  const ag::Variable& beta() const { return beta_; }    // undefined without center

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  LayerNormOptions options_;
  std::vector<std::int64_t> axes_;  // resolved, ascending, with the batch axis counted
  Shape broadcast_shape_;           // of gamma/beta against x, without the batch
  ag::Variable gamma_, beta_;
};

}  // namespace petal::nn
