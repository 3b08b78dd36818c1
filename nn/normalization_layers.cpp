#include "nn/normalization_layers.hpp"

#include <algorithm>

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

LayerNormalization::LayerNormalization(LayerNormOptions options)
    : Module("LayerNormalization", "layer_normalization", options.name), options_(std::move(options)) {
  PETAL_CHECK(!options_.axis.empty(), ValueError, "LayerNormalization \"", name(), "\": axis is empty");
  PETAL_CHECK(options_.epsilon >= 0.0, ValueError, "LayerNormalization \"", name(), "\": epsilon must be >= 0, got ",
              options_.epsilon);
}

Shape LayerNormalization::build_impl(const Shape& input_shape) {
  const auto rank = static_cast<std::int64_t>(input_shape.size()) + 1;
  axes_.clear();
  for (std::int64_t a : options_.axis) {
    const std::int64_t r = a < 0 ? a + rank : a;
    check_input(r >= 1 && r < rank, input_shape,
                str_cat("has no axis ", a, " other than the batch axis (rank ", rank, " with the batch)"));
    check_input(std::find(axes_.begin(), axes_.end(), r) == axes_.end(), input_shape,
                str_cat("is normalised over axis ", a, " twice"));
    axes_.push_back(r);
  }
  std::sort(axes_.begin(), axes_.end());
  Shape param;
  broadcast_shape_.assign(input_shape.size(), 1);
  for (std::int64_t r : axes_) {
    const std::int64_t d = input_shape[static_cast<std::size_t>(r - 1)];
    param.push_back(d);
    broadcast_shape_[static_cast<std::size_t>(r - 1)] = d;
  }
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  if (options_.scale) gamma_ = add_parameter("gamma", options_.gamma_initializer(param, gen));
  if (options_.center) beta_ = add_parameter("beta", options_.beta_initializer(param, gen));
  return input_shape;
}

ag::Variable LayerNormalization::forward(const ag::Variable& x) {
  ag::Variable mean = ag::mean(x, axes_, /*keepdim=*/true);
  ag::Variable var = ag::variance(x, axes_, /*keepdim=*/true);
  ag::Variable y = ag::div(ag::sub(x, mean), ag::sqrt(ag::add_scalar(var, options_.epsilon)));
  // gamma/beta [d...] laid out against x: [1, ..., d, ...] (a view when the
  // normalised axes are the last ones, which broadcasting alone would cover).
  Shape full{1};
  full.insert(full.end(), broadcast_shape_.begin(), broadcast_shape_.end());
  if (gamma_.defined()) y = ag::mul(y, ag::reshape(gamma_, full));
  if (beta_.defined()) y = ag::add(y, ag::reshape(beta_, full));
  return y;
}

}  // namespace petal::nn
