#include "nn/preprocessing_layers.hpp"

#include <algorithm>
#include <vector>

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

ag::Variable reverse_axis(const ag::Variable& x, std::int64_t axis) {
  const std::int64_t n = x.size(axis);
  if (n == 1) return x;
  if (x.data().device().is_cpu()) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = n - 1 - i;
    return ag::take(x, from_vector<std::int64_t>(order), axis);
  }
  std::vector<ag::Variable> parts = ag::split(x, n, axis);
  std::reverse(parts.begin(), parts.end());
  return ag::concat(parts, axis);
}

namespace {

// [N, 1, 1, 1] of 0/1, each 1 with probability 1/2, where x lives.
ag::Variable coin_flips(const ag::Variable& x, Generator& gen) {
  std::vector<float> m(static_cast<std::size_t>(x.size(0)));
  for (float& v : m) v = gen.uniform_float() < 0.5f ? 1.0f : 0.0f;
  return ag::Variable(from_vector<float>(m, {x.size(0), 1, 1, 1}).to(x.data().dtype()).to(x.data().device()));
}

// x where mask is 0, alternative where it is 1 (mask [N, 1, 1, 1]).
ag::Variable blend(const ag::Variable& x, const ag::Variable& alternative, const ag::Variable& mask) {
  return ag::add(x, ag::mul(ag::sub(alternative, x), mask));
}

}  // namespace

RandomFlip::RandomFlip(std::string mode, std::optional<std::uint64_t> seed, std::string name)
    : Module("RandomFlip", "random_flip", std::move(name)) {
  horizontal_ = mode == "horizontal" || mode == "horizontal_and_vertical";
  vertical_ = mode == "vertical" || mode == "horizontal_and_vertical";
  PETAL_CHECK(horizontal_ || vertical_, ValueError, "RandomFlip \"", this->name(), "\": mode \"", mode,
              "\" is not one of horizontal, vertical, horizontal_and_vertical");
  if (seed) {
    own_generator_ = true;
    generator_.seed(*seed);
  }
}

Shape RandomFlip::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == 3, input_shape, "must be (height, width, channels)");
  return input_shape;
}

ag::Variable RandomFlip::forward(const ag::Variable& x) {
  if (!training()) return x;
  Generator& gen = own_generator_ ? generator_ : default_generator();
  ag::Variable flipped = x;
  if (horizontal_) flipped = reverse_axis(flipped, 2);
  if (vertical_) flipped = reverse_axis(flipped, 1);
  return blend(x, flipped, coin_flips(x, gen));
}

RandomContrast::RandomContrast(double factor, std::optional<std::uint64_t> seed, std::string name)
    : RandomContrast(std::pair{factor, factor}, seed, std::move(name)) {}

RandomContrast::RandomContrast(std::pair<double, double> factor, std::optional<std::uint64_t> seed, std::string name,
                               std::pair<double, double> value_range)
    : Module("RandomContrast", "random_contrast", std::move(name)),
      lower_(factor.first),
      upper_(factor.second),
      value_min_(value_range.first),
      value_max_(value_range.second) {
  const double lower = lower_, upper = upper_, value_min = value_min_, value_max = value_max_;
  PETAL_CHECK(lower >= 0.0 && lower <= 1.0 && upper >= 0.0, ValueError, "RandomContrast \"", this->name(),
              "\": factor must have lower in [0, 1] and upper >= 0, got (", lower, ", ", upper, ")");
  PETAL_CHECK(value_min < value_max, ValueError, "RandomContrast \"", this->name(), "\": value_range [", value_min,
              ", ", value_max, "] is empty");
  if (seed) {
    own_generator_ = true;
    generator_.seed(*seed);
  }
}

Shape RandomContrast::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == 3, input_shape, "must be (height, width, channels)");
  return input_shape;
}

ag::Variable RandomContrast::forward(const ag::Variable& x) {
  if (!training()) return x;
  Generator& gen = own_generator_ ? generator_ : default_generator();
  std::vector<float> f(static_cast<std::size_t>(x.size(0)));
  for (float& v : f) v = static_cast<float>(1.0 - lower_ + (lower_ + upper_) * gen.uniform_double());
  const ag::Variable factor(from_vector<float>(f, {x.size(0), 1, 1, 1}).to(x.data().dtype()).to(x.data().device()));
  const ag::Variable mean = ag::mean(x, {1, 2}, /*keepdim=*/true);
  return ag::clamp(ag::add(ag::mul(ag::sub(x, mean), factor), mean), value_min_, value_max_);
}

}  // namespace petal::nn
