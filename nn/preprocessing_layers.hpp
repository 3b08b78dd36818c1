// Keras's image preprocessing layers over [N, H, W, C] float tensors:
// Resizing (always), and the random augmentation layers that act only in
// training mode (the identity in inference, as Keras): RandomFlip and
// RandomContrast. Each random layer draws from its own generator when seeded,
// else from default_generator(). Not here yet: RandomRotation, RandomZoom
// (no sampling/affine-warp op in autograd or the kernels).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/random.hpp"
#include "nn/module.hpp"

namespace petal::nn {

// x [N, H, W, C] resized to [N, height, width, C] as TensorFlow's
// tf.image.resize without antialiasing (half-pixel centres): "bilinear", or
// "nearest" (source index floor((o + 0.5) * in / out)). Built from matmuls
// with interpolation matrices, so it runs and differentiates on every device.
ag::Variable resize_images(const ag::Variable& x, std::int64_t height, std::int64_t width,
                           const std::string& interpolation = "bilinear");

// Keras's Resizing(height, width, interpolation="bilinear") (no
// crop_to_aspect_ratio / pad_to_aspect_ratio), in every mode.
class Resizing : public Module {
 public:
  Resizing(std::int64_t height, std::int64_t width, std::string interpolation = "bilinear", std::string name = "");
  std::int64_t height() const { return height_; }
  std::int64_t width() const { return width_; }
  const std::string& interpolation() const { return interpolation_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::int64_t height_, width_;
  std::string interpolation_;
};

// x reversed along `axis`: ag::take on the CPU, slices joined in reverse
// order elsewhere. The gradient is reversed back.
ag::Variable reverse_axis(const ag::Variable& x, std::int64_t axis);

// Flips each image of the batch, independently, with probability 1/2: left to
// right ("horizontal"), top to bottom ("vertical"), or both at once
// ("horizontal_and_vertical", Keras's default: as Keras 3, one draw per image
// decides both flips, so an image is kept or turned by 180 degrees).
// ValueError for another mode.
class RandomFlip : public Module {
 public:
  explicit RandomFlip(std::string mode = "horizontal_and_vertical", std::optional<std::uint64_t> seed = std::nullopt,
                      std::string name = "");
  bool horizontal() const { return horizontal_; }
  bool vertical() const { return vertical_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  bool horizontal_ = false, vertical_ = false;
  bool own_generator_ = false;
  Generator generator_;
};

// Per image, a factor f uniform in [1 - lower, 1 + upper] (factor = lower =
// upper, or the pair {lower, upper}; lower in [0, 1], upper >= 0); each channel becomes
// (x - mean) * f + mean, its mean over height and width, then clipped to
// value_range (Keras's default [0, 255]).
class RandomContrast : public Module {
 public:
  explicit RandomContrast(double factor, std::optional<std::uint64_t> seed = std::nullopt, std::string name = "");
  // RandomContrast(std::pair{0.2, 0.5}, seed): a std::pair, so that
  // RandomContrast(0.5, 11) stays (factor, seed).
  RandomContrast(std::pair<double, double> factor, std::optional<std::uint64_t> seed = std::nullopt,
                 std::string name = "", std::pair<double, double> value_range = {0.0, 255.0});
  double lower() const { return lower_; }
  double upper() const { return upper_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  double lower_, upper_, value_min_, value_max_;
  bool own_generator_ = false;
  Generator generator_;
};

}  // namespace petal::nn
