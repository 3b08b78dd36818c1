// Embedding (Keras): integer ids [N, ...] -> vectors [N, ..., output_dim],
// rows of the weight "embeddings" [input_dim, output_dim].
#pragma once

#include <cstdint>
#include <string>

#include "core/random.hpp"
#include "nn/initializers.hpp"
#include "nn/module.hpp"

namespace petal::nn {

struct EmbeddingOptions {
  std::string name = "";
  Initializer embeddings_initializer = random_uniform(-0.05, 0.05);  // Keras's "uniform"
  Generator* generator = nullptr;
};

// Ids are int64, or floats holding integers (truncated toward zero, as
// Keras's cast; a functional model's inputs are float). An id outside
// [0, input_dim) is an IndexError. The lookup is ag::embedding: CPU only for
// now, with a dense gradient.
class Embedding : public Module {
 public:
  Embedding(std::int64_t input_dim, std::int64_t output_dim, EmbeddingOptions options = {});
  std::int64_t input_dim() const { return input_dim_; }
  std::int64_t output_dim() const { return output_dim_; }
  const ag::Variable& embeddings() const { return embeddings_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::int64_t input_dim_, output_dim_;
  EmbeddingOptions options_;
  ag::Variable embeddings_;
};

}  // namespace petal::nn
