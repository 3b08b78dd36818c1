#include "nn/preprocessing_layers.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
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

namespace petal::nn {

namespace {

// TensorFlow's map of a coordinate outside [0, len - 1] for each fill mode
// (tensorflow/core/kernels/image/image_ops.h, MapCoordinate), in float32 as
// TensorFlow computes it, so that points on a pixel boundary round the same way.
float map_coordinate(float in, std::int64_t len, const std::string& mode) {
  const auto n = static_cast<float>(len);
  if (mode == "constant") return in;
  // A point at infinity (a projective transform) reads the first pixel; far
  // points are brought near by the mode's period first, so the integer casts
  // below stay in range.
  if (!std::isfinite(in)) return 0.0f;
  if (std::abs(in) > 1e7f) in = std::fmod(in, mode == "reflect" ? 2 * n : n);
  if (mode == "reflect") {
    if (in < 0) {
      if (len <= 1) {
        in = 0.0f;
      } else {
        const float sz2 = 2 * n;
        if (in < sz2) in = sz2 * static_cast<float>(static_cast<std::int64_t>(-in / sz2)) + in;
        in = in < -n ? in + sz2 : -in - 1;
      }
    } else if (in > n - 1) {
      if (len <= 1) {
        in = 0.0f;
      } else {
        const float sz2 = 2 * n;
        in -= sz2 * static_cast<float>(static_cast<std::int64_t>(in / sz2));
        if (in >= n) in = sz2 - in - 1;
      }
    }
  } else if (mode == "wrap") {
    if (in < 0) {
      if (len <= 1) {
        in = 0.0f;
      } else {
        const float sz = n - 1;
        in += n * (static_cast<float>(static_cast<std::int64_t>(-in / sz)) + 1);
      }
    } else if (in > n - 1) {
      if (len <= 1) {
        in = 0.0f;
      } else {
        const float sz = n - 1;
        in -= n * static_cast<float>(static_cast<std::int64_t>(in / sz));
      }
    }
  }
  return std::clamp(in, 0.0f, n - 1);
}

}  // namespace

ag::Variable affine_transform_images(const ag::Variable& x, const std::vector<std::array<double, 8>>& transforms,
                                     const std::string& interpolation, const std::string& fill_mode,
                                     double fill_value) {
  PETAL_CHECK(x.defined() && x.dim() == 4, ShapeError, "affine_transform_images: images must be [N, H, W, C], got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  const std::int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  PETAL_CHECK(static_cast<std::int64_t>(transforms.size()) == n, ValueError, "affine_transform_images: ",
              transforms.size(), " transforms for ", n, " images");
  PETAL_CHECK(interpolation == "bilinear" || interpolation == "nearest", ValueError,
              "affine_transform_images: interpolation must be \"bilinear\" or \"nearest\", got \"", interpolation, "\"");
  PETAL_CHECK(fill_mode == "constant" || fill_mode == "reflect" || fill_mode == "wrap" || fill_mode == "nearest",
              ValueError, "affine_transform_images: fill_mode must be constant, reflect, wrap or nearest, got \"",
              fill_mode, "\"");
  const bool bilinear = interpolation == "bilinear";
  const int taps = bilinear ? 4 : 1;
  const std::int64_t pixels = n * h * w;
  std::vector<std::vector<std::int64_t>> index(taps, std::vector<std::int64_t>(static_cast<std::size_t>(pixels), 0));
  std::vector<std::vector<float>> weight(taps, std::vector<float>(static_cast<std::size_t>(pixels), 0.0f));
  std::vector<float> fill(static_cast<std::size_t>(pixels), 0.0f);
  for (std::int64_t b = 0; b < n; ++b) {
    const auto& t = transforms[static_cast<std::size_t>(b)];
    for (std::int64_t oy = 0; oy < h; ++oy)
      for (std::int64_t ox = 0; ox < w; ++ox) {
        const auto p = static_cast<std::size_t>((b * h + oy) * w + ox);
        const auto fx = static_cast<float>(ox), fy = static_cast<float>(oy);
        const float k = static_cast<float>(t[6]) * fx + static_cast<float>(t[7]) * fy + 1.0f;
        if (k == 0.0f) {
          fill[p] = 1.0f;
          continue;
        }
        const float in_x = map_coordinate(
            (static_cast<float>(t[0]) * fx + static_cast<float>(t[1]) * fy + static_cast<float>(t[2])) / k, w, fill_mode);
        const float in_y = map_coordinate(
            (static_cast<float>(t[3]) * fx + static_cast<float>(t[4]) * fy + static_cast<float>(t[5])) / k, h, fill_mode);
        // One tap: inside the image reads the pixel, outside the fill value.
        auto tap = [&](int i, float yy, float xx, float wt) {
          if (yy >= 0 && yy <= static_cast<float>(h - 1) && xx >= 0 && xx <= static_cast<float>(w - 1)) {
            index[i][p] = (b * h + static_cast<std::int64_t>(yy)) * w + static_cast<std::int64_t>(xx);
            weight[i][p] = wt;
          } else {
            fill[p] += wt;
          }
        };
        if (!bilinear) {
          tap(0, std::round(in_y), std::round(in_x), 1.0f);
          continue;
        }
        const float y0 = std::floor(in_y), x0 = std::floor(in_x), y1 = y0 + 1, x1 = x0 + 1;
        tap(0, y0, x0, (y1 - in_y) * (x1 - in_x));
        tap(1, y0, x1, (y1 - in_y) * (in_x - x0));
        tap(2, y1, x0, (in_y - y0) * (x1 - in_x));
        tap(3, y1, x1, (in_y - y0) * (in_x - x0));
      }
  }
  const DType dtype = x.data().dtype();
  const Device device = x.data().device();
  const ag::Variable flat = ag::reshape(x, {pixels, c});
  ag::Variable out;
  for (int i = 0; i < taps; ++i) {
    const Tensor idx = from_vector(index[i], {pixels});
    const ag::Variable wt(from_vector(weight[i], {pixels, 1}).to(dtype).to(device));
    const ag::Variable term = ag::mul(ag::take(flat, idx, 0), wt);
    out = out.defined() ? ag::add(out, term) : term;
  }
  if (fill_value != 0.0 && std::any_of(fill.begin(), fill.end(), [](float f) { return f != 0.0f; })) {
    for (float& f : fill) f = static_cast<float>(f * fill_value);
    out = ag::add(out, ag::Variable(from_vector(fill, {pixels, 1}).to(dtype).to(device)));
  }
  return ag::reshape(out, {n, h, w, c});
}

namespace {

void check_affine_options(const AffineAugmentOptions& o, const std::string& layer) {
  PETAL_CHECK(o.interpolation == "bilinear" || o.interpolation == "nearest", ValueError, layer,
              ": interpolation must be \"bilinear\" or \"nearest\", got \"", o.interpolation, "\"");
  PETAL_CHECK(o.fill_mode == "constant" || o.fill_mode == "reflect" || o.fill_mode == "wrap" ||
                  o.fill_mode == "nearest",
              ValueError, layer, ": fill_mode must be constant, reflect, wrap or nearest, got \"", o.fill_mode, "\"");
}

Shape check_image_shape(const Module& m, const Shape& in) {
  PETAL_CHECK(in.size() == 3, ShapeError, m.type_name(), " \"", m.name(), "\": input must be (height, width, channels), got ",
              keras_shape_str(in));
  return in;
}

}  // namespace

RandomRotation::RandomRotation(double factor, AffineAugmentOptions options)
    : RandomRotation(std::pair{-factor, factor}, std::move(options)) {}

RandomRotation::RandomRotation(std::pair<double, double> factor, AffineAugmentOptions options)
    : Module("RandomRotation", "random_rotation", options.name), lower_(factor.first), upper_(factor.second),
      options_(std::move(options)) {
  PETAL_CHECK(std::isfinite(lower_) && std::isfinite(upper_) && lower_ <= upper_, ValueError, "RandomRotation \"",
              name(), "\": factor must be finite with lower <= upper, got (", lower_, ", ", upper_, ")");
  check_affine_options(options_, "RandomRotation \"" + name() + "\"");
  if (options_.seed) generator_.seed(*options_.seed);
}

Shape RandomRotation::build_impl(const Shape& input_shape) { return check_image_shape(*this, input_shape); }

ag::Variable RandomRotation::forward(const ag::Variable& x) {
  if (!training()) return x;
  Generator& gen = options_.seed ? generator_ : default_generator();
  const double h = static_cast<double>(x.size(1)), w = static_cast<double>(x.size(2));
  std::vector<std::array<double, 8>> transforms;
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    const double angle = (lower_ + (upper_ - lower_) * gen.uniform_double()) * 2.0 * std::numbers::pi;
    const double cos_a = std::cos(angle), sin_a = std::sin(angle);
    // Keras 3: rotation about the image centre, as an output -> input map.
    const double x_offset = ((w - 1) - (cos_a * (w - 1) - sin_a * (h - 1))) / 2.0;
    const double y_offset = ((h - 1) - (sin_a * (w - 1) + cos_a * (h - 1))) / 2.0;
    transforms.push_back({cos_a, -sin_a, x_offset, sin_a, cos_a, y_offset, 0.0, 0.0});
  }
  return affine_transform_images(x, transforms, options_.interpolation, options_.fill_mode, options_.fill_value);
}

RandomZoom::RandomZoom(double height_factor, std::optional<double> width_factor, AffineAugmentOptions options)
    : RandomZoom(std::pair{-height_factor, height_factor},
                 width_factor ? std::optional(std::pair{-*width_factor, *width_factor}) : std::nullopt,
                 std::move(options)) {}

RandomZoom::RandomZoom(std::pair<double, double> height_factor,
                       std::optional<std::pair<double, double>> width_factor, AffineAugmentOptions options)
    : Module("RandomZoom", "random_zoom", options.name), height_(height_factor),
      width_(width_factor.value_or(height_factor)), same_zoom_(!width_factor), options_(std::move(options)) {
  for (const auto& [lo, hi] : {height_, width_})
    PETAL_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && lo > -1.0, ValueError, "RandomZoom \"", name(),
                "\": factors must be finite, lower <= upper and lower > -1, got (", lo, ", ", hi, ")");
  check_affine_options(options_, "RandomZoom \"" + name() + "\"");
  if (options_.seed) generator_.seed(*options_.seed);
}

Shape RandomZoom::build_impl(const Shape& input_shape) { return check_image_shape(*this, input_shape); }

ag::Variable RandomZoom::forward(const ag::Variable& x) {
  if (!training()) return x;
  Generator& gen = options_.seed ? generator_ : default_generator();
  const double h = static_cast<double>(x.size(1)), w = static_cast<double>(x.size(2));
  std::vector<std::array<double, 8>> transforms;
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    const double zy = 1.0 + height_.first + (height_.second - height_.first) * gen.uniform_double();
    const double zx = same_zoom_ ? zy : 1.0 + width_.first + (width_.second - width_.first) * gen.uniform_double();
    // Keras 3: zoom about the image centre (a zoom > 1 shows more of the scene).
    transforms.push_back({zx, 0.0, (w - 1) / 2.0 * (1.0 - zx), 0.0, zy, (h - 1) / 2.0 * (1.0 - zy), 0.0, 0.0});
  }
  return affine_transform_images(x, transforms, options_.interpolation, options_.fill_mode, options_.fill_value);
}

}  // namespace petal::nn
