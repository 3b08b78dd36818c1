#include "nn/embedding_layer.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

Embedding::Embedding(std::int64_t input_dim, std::int64_t output_dim, EmbeddingOptions options)
    : Module("Embedding", "embedding", options.name),
      input_dim_(input_dim),
      output_dim_(output_dim),
      options_(std::move(options)) {
  PETAL_CHECK(input_dim > 0 && output_dim > 0, ValueError, "Embedding \"", name(),
              "\": input_dim and output_dim must be positive, got ", input_dim, " and ", output_dim);
}

Shape Embedding::build_impl(const Shape& input_shape) {
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  embeddings_ = add_parameter("embeddings", options_.embeddings_initializer({input_dim_, output_dim_}, gen));
  Shape out = input_shape;
  out.push_back(output_dim_);
  return out;
}

ag::Variable Embedding::forward(const ag::Variable& x) {
  const Tensor& data = x.data();
  const Tensor ids = data.dtype() == DType::Int64 ? data : data.to(DType::Int64);
  return ag::embedding(embeddings_, ids);
}

}  // namespace petal::nn
