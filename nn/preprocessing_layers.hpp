// Keras's image preprocessing layers over [N, H, W, C] float tensors:
// Resizing (always), and the random augmentation layers that act only in
// training mode (the identity in inference, as Keras): RandomFlip and
// RandomContrast, RandomRotation, RandomZoom. Each random layer draws from
// its own generator when seeded, else from default_generator().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>
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

// Keras's ops.image.affine_transform (TensorFlow's ImageProjectiveTransformV3)
// of x [N, H, W, C]: transforms[n] = [a0, a1, a2, b0, b1, b2, c0, c1] maps an
// OUTPUT pixel (x, y) to the input point ((a0 x + a1 y + a2) / k,
// (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1. fill_mode says how points
// outside the image read: "constant" (fill_value), "reflect" (d c b a | a b c d
// | d c b a), "wrap" (a b c d | a b c d), "nearest" (a a a a | a b c d);
// interpolation "bilinear" or "nearest". Differentiable in x (a weighted sum of
// ag::take gathers: CPU only for now, as ag::take).
ag::Variable affine_transform_images(const ag::Variable& x, const std::vector<std::array<double, 8>>& transforms,
                                     const std::string& interpolation = "bilinear",
                                     const std::string& fill_mode = "constant", double fill_value = 0.0);

// What RandomRotation and RandomZoom share: Keras's fill and interpolation
// options and the generator.
struct AffineAugmentOptions {
  std::string fill_mode = "reflect";
  std::string interpolation = "bilinear";
  double fill_value = 0.0;
  std::optional<std::uint64_t> seed = std::nullopt;
  std::string name = "";
};

// Rotates each image by an angle uniform in [lower, upper] * 2 pi about its
// centre (factor f: [-f, f]), in training mode only (Keras 3's RandomRotation).
class RandomRotation : public Module {
 public:
  explicit RandomRotation(double factor, AffineAugmentOptions options = {});
  RandomRotation(std::pair<double, double> factor, AffineAugmentOptions options = {});

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  double lower_, upper_;
  AffineAugmentOptions options_;
  Generator generator_;
};

// Zooms each image about its centre by 1 + a factor uniform in
// height_factor = [lower, upper] (negative: zoom in, as Keras 3's RandomZoom);
// the width uses width_factor, or the height's draw when absent.
class RandomZoom : public Module {
 public:
  explicit RandomZoom(double height_factor, std::optional<double> width_factor = std::nullopt,
                      AffineAugmentOptions options = {});
  RandomZoom(std::pair<double, double> height_factor, std::optional<std::pair<double, double>> width_factor,
             AffineAugmentOptions options = {});

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::pair<double, double> height_, width_;
  bool same_zoom_;
  AffineAugmentOptions options_;
  Generator generator_;
};

}  // namespace petal::nn
