#include "nn/preprocessing_layers.hpp"

#include <algorithm>
#include <cmath>
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

// The [in, out] matrix whose column o holds the weights of output o on the
// inputs (TensorFlow's half-pixel rules), in x's dtype and on x's device.
Tensor interpolation_matrix(std::int64_t in, std::int64_t out, bool bilinear, const ag::Variable& like) {
  std::vector<float> m(static_cast<std::size_t>(in * out), 0.0f);
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const auto at = [&](std::int64_t i, std::int64_t o) -> float& { return m[static_cast<std::size_t>(i * out + o)]; };
  for (std::int64_t o = 0; o < out; ++o) {
    if (bilinear) {
      const double src = (static_cast<double>(o) + 0.5) * scale - 0.5;
      const double f = std::floor(src);
      const double lerp = src - f;
      const std::int64_t lower = std::clamp<std::int64_t>(static_cast<std::int64_t>(f), 0, in - 1);
      const std::int64_t upper = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(src)), 0, in - 1);
      at(lower, o) += static_cast<float>(1.0 - lerp);
      at(upper, o) += static_cast<float>(lerp);
    } else {
      const auto i = static_cast<std::int64_t>(std::floor((static_cast<double>(o) + 0.5) * scale));
      at(std::min(i, in - 1), o) = 1.0f;
    }
  }
  return from_vector<float>(m, {in, out}).to(like.data().dtype()).to(like.data().device());
}

// [N, H, W, C] with axis (1 or 2) resized to `out` by one matmul.
ag::Variable resize_axis(const ag::Variable& x, std::int64_t axis, std::int64_t out, bool bilinear) {
  const std::int64_t in = x.size(axis);
  if (in == out) return x;
  // The resized axis last: [N, W, C, H] or [N, H, C, W].
  const std::vector<std::int64_t> order = axis == 1 ? std::vector<std::int64_t>{0, 2, 3, 1}
                                                    : std::vector<std::int64_t>{0, 1, 3, 2};
  ag::Variable moved = ag::permute(x, order);
  Shape moved_shape = moved.shape();
  ag::Variable flat = ag::reshape(moved, {-1, in});
  ag::Variable resized = ag::matmul(flat, ag::Variable(interpolation_matrix(in, out, bilinear, x)));
  moved_shape.back() = out;
  resized = ag::reshape(resized, moved_shape);
  // Back: the inverse permutation.
  std::vector<std::int64_t> inverse(4);
  for (std::size_t i = 0; i < 4; ++i) inverse[static_cast<std::size_t>(order[i])] = static_cast<std::int64_t>(i);
  return ag::permute(resized, inverse);
}

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

ag::Variable resize_images(const ag::Variable& x, std::int64_t height, std::int64_t width,
                           const std::string& interpolation) {
  PETAL_CHECK(interpolation == "bilinear" || interpolation == "nearest", ValueError, "resize: interpolation \"",
              interpolation, "\" is not supported (bilinear or nearest)");
  PETAL_CHECK(x.dim() == 4, ShapeError, "resize: expected [N, H, W, C] images, got ", x.dim(), " axes");
  PETAL_CHECK(height > 0 && width > 0, ValueError, "resize: the size must be positive, got ", height, "x", width);
  const bool bilinear = interpolation == "bilinear";
  return resize_axis(resize_axis(x, 1, height, bilinear), 2, width, bilinear);
}

Resizing::Resizing(std::int64_t height, std::int64_t width, std::string interpolation, std::string name)
    : Module("Resizing", "resizing", std::move(name)),
      height_(height),
      width_(width),
      interpolation_(std::move(interpolation)) {
  PETAL_CHECK(height > 0 && width > 0, ValueError, "Resizing \"", this->name(), "\": height and width must be positive, got ",
              height, " and ", width);
  PETAL_CHECK(interpolation_ == "bilinear" || interpolation_ == "nearest", ValueError, "Resizing \"", this->name(),
              "\": interpolation \"", interpolation_, "\" is not supported (bilinear or nearest)");
}

Shape Resizing::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == 3, input_shape, "must be (height, width, channels)");
  return {height_, width_, input_shape[2]};
}

ag::Variable Resizing::forward(const ag::Variable& x) { return resize_images(x, height_, width_, interpolation_); }

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
