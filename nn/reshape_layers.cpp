#include "nn/reshape_layers.hpp"

#include <algorithm>

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/preprocessing_layers.hpp"

namespace petal::nn {

Reshape::Reshape(Shape target_shape, std::string name)
    : Module("Reshape", "reshape", std::move(name)), target_(std::move(target_shape)) {
  int unknown = 0;
  for (std::int64_t d : target_) {
    PETAL_CHECK(d > 0 || d == -1, ValueError, "Reshape \"", this->name(), "\": target_shape ",
                keras_shape_str(target_), " needs positive sizes or one -1");
    unknown += d == -1;
  }
  PETAL_CHECK(unknown <= 1, ValueError, "Reshape \"", this->name(), "\": target_shape ", keras_shape_str(target_),
              " has more than one -1");
}

Shape Reshape::build_impl(const Shape& input_shape) {
  const std::int64_t total = shape_numel(input_shape);
  std::int64_t known = 1;
  for (std::int64_t d : target_)
    if (d != -1) known *= d;
  Shape out = target_;
  const auto unknown = std::find(out.begin(), out.end(), std::int64_t{-1});
  if (unknown != out.end()) {
    check_input(known > 0 && total % known == 0, input_shape,
                str_cat("cannot be reshaped to ", keras_shape_str(target_)));
    *unknown = total / known;
  }
  check_input(shape_numel(out) == total, input_shape, str_cat("cannot be reshaped to ", keras_shape_str(target_)));
  return out;
}

ag::Variable Reshape::forward(const ag::Variable& x) {
  Shape shape{x.size(0)};
  for (std::int64_t d : output_shape()) shape.push_back(d);
  return ag::reshape(x, shape);
}

Permute::Permute(std::vector<std::int64_t> dims, std::string name)
    : Module("Permute", "permute", std::move(name)), dims_(std::move(dims)) {
  std::vector<std::int64_t> sorted = dims_;
  std::sort(sorted.begin(), sorted.end());
  bool ok = !sorted.empty();
  for (std::size_t i = 0; i < sorted.size(); ++i) ok = ok && sorted[i] == static_cast<std::int64_t>(i) + 1;
  PETAL_CHECK(ok, ValueError, "Permute \"", this->name(), "\": dims must be a permutation of 1..", dims_.size(),
              " (1-based, the batch axis excluded)");
}

Shape Permute::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == dims_.size(), input_shape,
              str_cat("needs ", dims_.size(), " axes besides the batch for dims of that length"));
  Shape out;
  for (std::int64_t d : dims_) out.push_back(input_shape[static_cast<std::size_t>(d - 1)]);
  return out;
}

ag::Variable Permute::forward(const ag::Variable& x) {
  std::vector<std::int64_t> order{0};
  order.insert(order.end(), dims_.begin(), dims_.end());
  return ag::permute(x, order);
}

RepeatVector::RepeatVector(std::int64_t n, std::string name)
    : Module("RepeatVector", "repeat_vector", std::move(name)), n_(n) {
  PETAL_CHECK(n > 0, ValueError, "RepeatVector \"", this->name(), "\": n must be positive, got ", n);
}

Shape RepeatVector::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == 1, input_shape, "needs one axis besides the batch (N, features)");
  return {n_, input_shape[0]};
}

ag::Variable RepeatVector::forward(const ag::Variable& x) {
  const std::int64_t n = x.size(0), f = x.size(1);
  return ag::broadcast_to(ag::reshape(x, {n, 1, f}), {n, n_, f});
}

Rescaling::Rescaling(double scale, double offset, std::string name)
    : Module("Rescaling", "rescaling", std::move(name)), scale_(scale), offset_(offset) {}

ag::Variable Rescaling::forward(const ag::Variable& x) {
  ag::Variable y = ag::mul_scalar(x, scale_);
  return offset_ == 0.0 ? y : ag::add_scalar(y, offset_);
}

Cropping2D::Cropping2D(std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right, std::string name)
    : Module("Cropping2D", "cropping2d", std::move(name)), top_(top), bottom_(bottom), left_(left), right_(right) {
  PETAL_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, ValueError, "Cropping2D \"", this->name(),
              "\": cropping must be >= 0, got ((", top, ", ", bottom, "), (", left, ", ", right, "))");
}
Cropping2D::Cropping2D(std::int64_t all, std::string name) : Cropping2D(all, all, all, all, std::move(name)) {}

Shape Cropping2D::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == 3, input_shape, "needs (height, width, channels)");
  const std::int64_t h = input_shape[0] - top_ - bottom_, w = input_shape[1] - left_ - right_;
  check_input(h > 0 && w > 0, input_shape,
              str_cat("is too small for cropping ((", top_, ", ", bottom_, "), (", left_, ", ", right_, "))"));
  return {h, w, input_shape[2]};
}

ag::Variable Cropping2D::forward(const ag::Variable& x) {
  ag::Variable y = ag::slice(x, 1, top_, x.size(1) - bottom_);
  return ag::slice(y, 2, left_, x.size(2) - right_);
}

UpSampling2D::UpSampling2D(Size2 size, std::string interpolation, std::string name)
    : Module("UpSampling2D", "up_sampling2d", std::move(name)), size_(size), interpolation_(std::move(interpolation)) {
  PETAL_CHECK(size.h > 0 && size.w > 0, ValueError, "UpSampling2D \"", this->name(),
              "\": size must be positive, got (", size.h, ", ", size.w, ")");
  PETAL_CHECK(interpolation_ == "nearest" || interpolation_ == "bilinear", ValueError, "UpSampling2D \"",
              this->name(), "\": interpolation \"", interpolation_, "\" is not supported (nearest or bilinear)");
}

Shape UpSampling2D::build_impl(const Shape& input_shape) {
  check_input(input_shape.size() == 3, input_shape, "needs (height, width, channels)");
  return {input_shape[0] * size_.h, input_shape[1] * size_.w, input_shape[2]};
}

ag::Variable UpSampling2D::forward(const ag::Variable& x) {
  const std::int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  if (interpolation_ == "bilinear") return resize_images(x, h * size_.h, w * size_.w, "bilinear");
  ag::Variable y = ag::broadcast_to(ag::reshape(x, {n, h, 1, w, 1, c}), {n, h, size_.h, w, size_.w, c});
  return ag::reshape(y, {n, h * size_.h, w * size_.w, c});
}

}  // namespace petal::nn
