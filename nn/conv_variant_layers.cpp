#include "nn/conv_variant_layers.hpp"

#include <algorithm>
#include <vector>

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

namespace {

ag::Conv2dOptions op_options(Size2 strides, Padding padding) {
  ag::Conv2dOptions o;
  o.stride_h = strides.h;
  o.stride_w = strides.w;
  o.padding = padding;
  return o;
}

// v reversed along axis (split into single slices, joined in reverse order:
// works on every device, unlike ag::take).
ag::Variable flip(const ag::Variable& v, std::int64_t axis) {
  if (v.size(axis) == 1) return v;
  std::vector<ag::Variable> parts = ag::split(v, v.size(axis), axis);
  std::reverse(parts.begin(), parts.end());
  return ag::concat(parts, axis);
}

// One spatial axis of a transposed convolution: its output size and the
// padding (before, after) of the zero-inserted input (size in * stride) that
// a stride-1 "valid" convolution with the flipped kernel needs.
struct TransposeAxis {
  std::int64_t out, before, after;
};

TransposeAxis transpose_axis(std::int64_t in, std::int64_t k, std::int64_t s, Padding padding) {
  if (padding == Padding::Valid) return {in * s + std::max(k - s, std::int64_t{0}), k - 1, std::max(k - s, std::int64_t{0})};
  // "same": the forward convolution from in * s to in pads max(k - s, 0) in
  // total, half (rounded down) before.
  const std::int64_t forward_before = std::max(k - s, std::int64_t{0}) / 2;
  return {in * s, k - 1 - forward_before, forward_before};
}

}  // namespace

// ---- SeparableConv2D ----

SeparableConv2D::SeparableConv2D(std::int64_t filters, Size2 kernel_size, SeparableConvOptions options)
    : Module("SeparableConv2D", "separable_conv2d", options.name),
      filters_(filters),
      kernel_size_(kernel_size),
      options_(std::move(options)) {
  PETAL_CHECK(filters > 0 && kernel_size.h > 0 && kernel_size.w > 0 && options_.strides.h > 0 &&
                  options_.strides.w > 0 && options_.depth_multiplier > 0,
              ValueError, "SeparableConv2D \"", name(),
              "\": filters, kernel size, strides and depth_multiplier must be positive");
}

Shape SeparableConv2D::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  const std::int64_t m = options_.depth_multiplier;
  depthwise_ = add_parameter("depthwise_kernel",
                             options_.depthwise_initializer({kernel_size_.h, kernel_size_.w, in[2], m}, gen));
  pointwise_ = add_parameter("pointwise_kernel", options_.pointwise_initializer({1, 1, in[2] * m, filters_}, gen));
  if (options_.use_bias) bias_ = add_parameter("bias", options_.bias_initializer({filters_}, gen));
  return {ag::conv_output_size(in[0], kernel_size_.h, options_.strides.h, options_.padding, name().c_str()),
          ag::conv_output_size(in[1], kernel_size_.w, options_.strides.w, options_.padding, name().c_str()), filters_};
}

ag::Variable SeparableConv2D::forward_logits(const ag::Variable& x) {
  ag::Variable y = ag::depthwise_conv2d(x, depthwise_, ag::Variable(), op_options(options_.strides, options_.padding));
  return ag::conv2d(y, pointwise_, bias_, op_options(1, Padding::Valid));
}

ag::Variable SeparableConv2D::forward(const ag::Variable& x) {
  return apply_activation(forward_logits(x), options_.activation.kind);
}

// ---- Conv2DTranspose ----

Conv2DTranspose::Conv2DTranspose(std::int64_t filters, Size2 kernel_size, ConvOptions options)
    : Module("Conv2DTranspose", "conv2d_transpose", options.name),
      filters_(filters),
      kernel_size_(kernel_size),
      options_(std::move(options)) {
  PETAL_CHECK(filters > 0 && kernel_size.h > 0 && kernel_size.w > 0 && options_.strides.h > 0 && options_.strides.w > 0,
              ValueError, "Conv2DTranspose \"", name(), "\": filters, kernel size and strides must be positive");
}

Shape Conv2DTranspose::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  kernel_ = add_parameter("kernel", options_.kernel_initializer({kernel_size_.h, kernel_size_.w, filters_, in[2]}, gen));
  if (options_.use_bias) bias_ = add_parameter("bias", options_.bias_initializer({filters_}, gen));
  return {transpose_axis(in[0], kernel_size_.h, options_.strides.h, options_.padding).out,
          transpose_axis(in[1], kernel_size_.w, options_.strides.w, options_.padding).out, filters_};
}

ag::Variable Conv2DTranspose::forward_logits(const ag::Variable& x) {
  const std::int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const std::int64_t sh = options_.strides.h, sw = options_.strides.w;
  const TransposeAxis th = transpose_axis(h, kernel_size_.h, sh, options_.padding);
  const TransposeAxis tw = transpose_axis(w, kernel_size_.w, sw, options_.padding);
  // Zeros after each pixel: [N, H, 1, W, 1, C] padded to [N, H, sh, W, sw, C].
  ag::Variable z = x;
  if (sh > 1 || sw > 1) {
    z = ag::pad(ag::reshape(x, {n, h, 1, w, 1, c}), {{0, 0}, {0, 0}, {0, sh - 1}, {0, 0}, {0, sw - 1}, {0, 0}});
    z = ag::reshape(z, {n, h * sh, w * sw, c});
  }
  z = ag::pad(z, {{0, 0}, {th.before, th.after}, {tw.before, tw.after}, {0, 0}});
  // [kh, kw, filters, C] -> flipped spatially, as HWIO [kh, kw, C, filters].
  ag::Variable k = ag::permute(flip(flip(kernel_, 0), 1), {0, 1, 3, 2});
  return ag::conv2d(z, k, bias_, op_options(1, Padding::Valid));
}

ag::Variable Conv2DTranspose::forward(const ag::Variable& x) {
  return apply_activation(forward_logits(x), options_.activation.kind);
}

}  // namespace petal::nn
