// SeparableConv2D and Conv2DTranspose (Keras), over NHWC activations, built
// from the autograd conv ops (no kernel of their own).
#pragma once

#include <cstdint>
#include <string>

#include "nn/conv_layers.hpp"

namespace petal::nn {

struct SeparableConvOptions {
  Size2 strides = 1;
  Padding padding = Padding::Valid;
  std::int64_t depth_multiplier = 1;
  bool use_bias = true;
  ActivationSpec activation = {};
  std::string name = "";
  Initializer depthwise_initializer = glorot_uniform();
  Initializer pointwise_initializer = glorot_uniform();
  Initializer bias_initializer = zeros_initializer();
  Generator* generator = nullptr;  // default_generator() when null
};

// A depthwise convolution (strides and padding applied there) followed by a
// 1x1 convolution to `filters` channels. Weights in Keras's order:
// depthwise_kernel [kh, kw, C, M], pointwise_kernel [1, 1, C*M, filters], bias [filters].
class SeparableConv2D : public Module {
 public:
  SeparableConv2D(std::int64_t filters, Size2 kernel_size, SeparableConvOptions options = {});
  std::int64_t filters() const { return filters_; }
  Size2 kernel_size() const { return kernel_size_; }
  const SeparableConvOptions& options() const { return options_; }
  const ag::Variable& depthwise_kernel() const { return depthwise_; }
  const ag::Variable& pointwise_kernel() const { return pointwise_; }
  const ag::Variable& bias() const { return bias_; }  // undefined without use_bias
  ActivationKind logits_activation() const override { return logits_activation_of(options_.activation.kind); }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;
  ag::Variable forward_logits(const ag::Variable& x) override;

 private:
  std::int64_t filters_;
  Size2 kernel_size_;
  SeparableConvOptions options_;
  ag::Variable depthwise_, pointwise_, bias_;
};

// The transpose (gradient with respect to the input) of a Conv2D, as Keras's
// Conv2DTranspose with output_padding None and dilation 1: output size
// in * stride + max(k - stride, 0) with "valid", in * stride with "same".
// Weights: kernel [kh, kw, filters, in_channels] (Keras's layout), bias
// [filters]. Computed as a stride-1 convolution of the input with zeros
// inserted between its pixels, padded, by the flipped kernel.
class Conv2DTranspose : public Module {
 public:
  Conv2DTranspose(std::int64_t filters, Size2 kernel_size, ConvOptions options = {});
  std::int64_t filters() const { return filters_; }
  Size2 kernel_size() const { return kernel_size_; }
  const ConvOptions& options() const { return options_; }
  const ag::Variable& kernel() const { return kernel_; }
  const ag::Variable& bias() const { return bias_; }  // undefined without use_bias
  ActivationKind logits_activation() const override { return logits_activation_of(options_.activation.kind); }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;
  ag::Variable forward_logits(const ag::Variable& x) override;

 private:
  std::int64_t filters_;
  Size2 kernel_size_;
  ConvOptions options_;
  ag::Variable kernel_, bias_;
};

}  // namespace petal::nn
