// Layers that move values without weights, as Keras's reshaping layers:
// Reshape, Permute, RepeatVector, Cropping2D, UpSampling2D, and Rescaling.
// Shapes exclude the batch axis, as everywhere in nn/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/conv_layers.hpp"
#include "nn/module.hpp"

namespace petal::nn {

// [N, ...] -> [N, target_shape...]; one size may be -1 (inferred from the
// input's size). ShapeError when the sizes do not match.
class Reshape : public Module {
 public:
  explicit Reshape(Shape target_shape, std::string name = "");
  const Shape& target_shape() const { return target_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  Shape target_;
};

// Reorders the axes after the batch; dims are 1-based as in Keras
// (Permute((2, 1)) swaps the two axes of a [N, A, B] input).
class Permute : public Module {
 public:
  explicit Permute(std::vector<std::int64_t> dims, std::string name = "");
  const std::vector<std::int64_t>& dims() const { return dims_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::vector<std::int64_t> dims_;
};

// [N, F] -> [N, n, F].
class RepeatVector : public Module {
 public:
  explicit RepeatVector(std::int64_t n, std::string name = "");
  std::int64_t n() const { return n_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::int64_t n_;
};

// x * scale + offset (Keras's Rescaling; offset defaults to 0).
class Rescaling : public Module {
 public:
  explicit Rescaling(double scale, double offset = 0.0, std::string name = "");
  double scale() const { return scale_; }
  double offset() const { return offset_; }

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override;

 private:
  double scale_, offset_;
};

// Removes rows and columns of [N, H, W, C]: ((top, bottom), (left, right)) as
// Keras, default none. ShapeError when nothing would remain.
class Cropping2D : public Module {
 public:
  Cropping2D(std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right, std::string name = "");
  // The same amount on all four sides (Keras's cropping=n).
  explicit Cropping2D(std::int64_t all = 0, std::string name = "");
  std::int64_t top() const { return top_; }
  std::int64_t bottom() const { return bottom_; }
  std::int64_t left() const { return left_; }
  std::int64_t right() const { return right_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::int64_t top_, bottom_, left_, right_;
};

// [N, H, W, C] -> [N, H*sh, W*sw, C] (Keras default size (2, 2)):
// interpolation "nearest" repeats each pixel, "bilinear" interpolates as
// tf.image.resize (nn::resize_images). ValueError for another interpolation.
class UpSampling2D : public Module {
 public:
  explicit UpSampling2D(Size2 size = 2, std::string interpolation = "nearest", std::string name = "");
  Size2 size() const { return size_; }
  const std::string& interpolation() const { return interpolation_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  Size2 size_;
  std::string interpolation_;
};

}  // namespace petal::nn
