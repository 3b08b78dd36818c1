// Convolution-family layers over NHWC activations (kernels HWIO, depthwise
// kernels [kh, kw, C, depth_multiplier]), with TensorFlow's padding rules.
//
// BatchNormalization follows Keras (TF 2.x) semantics for frozen layers: a
// BN layer whose trainable flag is false runs in inference mode (moving
// statistics, no updates) even while the model is in training mode inside
// fit(). So freezing a pretrained base freezes its normalisation too, and
// fine-tuning with the BN layers frozen keeps them in inference mode.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "autograd/conv_functions.hpp"
#include "core/random.hpp"
#include "nn/activation.hpp"
#include "nn/initializers.hpp"
#include "nn/module.hpp"
#include "nn/replica_context.hpp"

namespace petal::nn {

using ag::Padding;

// A (height, width) pair; a single number means both.
struct Size2 {
  std::int64_t h = 1, w = 1;
  Size2(std::int64_t both = 1) : h(both), w(both) {}
  Size2(std::int64_t height, std::int64_t width) : h(height), w(width) {}
};

struct ConvOptions {
  Size2 strides = 1;
  Padding padding = Padding::Valid;
  bool use_bias = true;
  ActivationSpec activation = {};
  std::string name = "";
  Initializer kernel_initializer = glorot_uniform();
  Initializer bias_initializer = zeros_initializer();
  Generator* generator = nullptr;  // default_generator() when null
};

class Conv2D : public Module {
 public:
  Conv2D(std::int64_t filters, Size2 kernel_size, ConvOptions options = {});
  const ag::Variable& kernel() const { return kernel_; }
  const ag::Variable& bias() const { return bias_; }  // undefined without use_bias
  std::int64_t filters() const { return filters_; }
  Size2 kernel_size() const { return kernel_size_; }
  const ConvOptions& options() const { return options_; }
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

struct DepthwiseConvOptions {
  Size2 strides = 1;
  Padding padding = Padding::Valid;
  std::int64_t depth_multiplier = 1;
  bool use_bias = true;
  ActivationSpec activation = {};
  std::string name = "";
  Initializer depthwise_initializer = glorot_uniform();
  Initializer bias_initializer = zeros_initializer();
  Generator* generator = nullptr;
};

class DepthwiseConv2D : public Module {
 public:
  explicit DepthwiseConv2D(Size2 kernel_size, DepthwiseConvOptions options = {});
  const ag::Variable& depthwise_kernel() const { return kernel_; }
  const ag::Variable& bias() const { return bias_; }  // undefined without use_bias
  Size2 kernel_size() const { return kernel_size_; }
  const DepthwiseConvOptions& options() const { return options_; }

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  Size2 kernel_size_;
  DepthwiseConvOptions options_;
  ag::Variable kernel_, bias_;
};

struct BatchNormOptions {
  double momentum = 0.99;
  double epsilon = 1e-3;
  std::string name = "";
  // Keras's synchronized=True: in data-parallel training, the batch
  // statistics of the global batch (every replica's samples), not of this
  // replica's share (nn/sync_batch_norm.hpp). No effect in one process.
  bool synchronized = false;
};

// Normalises the last axis. Weights: gamma, beta (parameters), moving_mean,
// moving_variance (buffers), in Keras's order. Uses batch statistics only when
// training() && trainable() (see the note at the top of this file).
class BatchNormalization : public Module {
 public:
  explicit BatchNormalization(BatchNormOptions options = {});
  bool uses_batch_statistics() const { return training() && trainable(); }
  const BatchNormOptions& options() const { return options_; }
  // BatchNormOptions::synchronized after construction.
  void set_synchronized(bool synchronized) { options_.synchronized = synchronized; }
  const ag::Variable& gamma() const { return gamma_; }
  const ag::Variable& beta() const { return beta_; }
  const ag::Variable& moving_mean() const { return moving_mean_; }
  const ag::Variable& moving_variance() const { return moving_variance_; }
  // The fused forms that nn/fusion.hpp runs, in this layer's mode. This
  // normalisation of x + input_bias (the bias of the dense layer that made x,
  // or undefined), then the activation, as one op (ag::batch_norm_activation).
  ag::Variable forward_fused(const ag::Variable& x, ag::BatchNormActivation activation,
                             const ag::Variable& input_bias = ag::Variable());
  // A convolution (regular or depthwise: `kernel` its weight, `bias` its bias
  // or undefined) followed by this normalisation and the activation, as one
  // op (ag::conv_batch_norm).
  ag::Variable forward_after_conv(ag::ConvKind kind, const ag::Variable& x, const ag::Variable& kernel,
                                  const ag::Variable& bias, const ag::Conv2dOptions& conv_options,
                                  ag::BatchNormActivation activation);
  // The same chain as a stage of ag::inverted_residual (this layer's
  // parameters, moving statistics and mode).
  ag::ConvBatchNormStage stage_after_conv(ag::ConvKind kind, const ag::Variable& kernel, const ag::Variable& bias,
                                          const ag::Conv2dOptions& conv_options, ag::BatchNormActivation activation);

 protected:
  Shape build_impl(const Shape& input_shape) override;
  ag::Variable forward(const ag::Variable& x) override;

 private:
  ag::BatchNormOptions op_options() const;
  // The replicas to synchronise this call's statistics over, or null.
  std::shared_ptr<ReplicaContext> synchronizing_replicas() const;
  ag::Variable synchronized_forward(const ag::Variable& x, ag::BatchNormActivation activation,
                                    const std::shared_ptr<ReplicaContext>& replicas);
  BatchNormOptions options_;
  ag::Variable gamma_, beta_, moving_mean_, moving_variance_;
};

// set_synchronized on every BatchNormalization of model's tree (PyTorch's
// SyncBatchNorm.convert_sync_batchnorm); returns how many it set.
int set_synchronized_batch_norm(Module& model, bool synchronized = true);

class ZeroPadding2D : public Module {
 public:
  // ((top, bottom), (left, right)) like Keras.
  ZeroPadding2D(std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right, std::string name = "");
  explicit ZeroPadding2D(std::int64_t all = 1, std::string name = "");
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

// One window over the whole image, [N, H, W, C] -> [N, C]: what
// GlobalAveragePooling2D and GlobalMaxPooling2D share (the output shape).
class GlobalPooling2D : public Module {
 protected:
  using Module::Module;
  Shape build_impl(const Shape& input_shape) override;
};

class GlobalAveragePooling2D : public GlobalPooling2D {
 public:
  explicit GlobalAveragePooling2D(std::string name = "");

 protected:
  ag::Variable forward(const ag::Variable& x) override;
};

// [N, H, W, C] -> [N, C]: the largest value of each channel (Keras's
// GlobalMaxPooling2D); the gradient goes to the first maximum.
class GlobalMaxPooling2D : public GlobalPooling2D {
 public:
  explicit GlobalMaxPooling2D(std::string name = "");

 protected:
  ag::Variable forward(const ag::Variable& x) override;
};

struct PoolOptions {
  std::optional<Size2> strides = std::nullopt;  // the pool size when absent (Keras)
  Padding padding = Padding::Valid;
  std::string name = "";
};

// A pooling window slid over the image: what AveragePooling2D and
// MaxPooling2D share (the window, its strides and padding, the output shape).
class Pooling2D : public Module {
 public:
  Size2 pool_size() const { return pool_; }
  Size2 strides() const { return options_.strides.value_or(pool_); }
  Padding padding() const { return options_.padding; }

 protected:
  Pooling2D(std::string type_name, std::string_view base_name, Size2 pool_size, PoolOptions options);
  Shape build_impl(const Shape& input_shape) override;

 private:
  Size2 pool_;
  PoolOptions options_;
};

class AveragePooling2D : public Pooling2D {
 public:
  explicit AveragePooling2D(Size2 pool_size = 2, PoolOptions options = {});

 protected:
  ag::Variable forward(const ag::Variable& x) override;
};

class MaxPooling2D : public Pooling2D {
 public:
  explicit MaxPooling2D(Size2 pool_size = 2, PoolOptions options = {});

 protected:
  ag::Variable forward(const ag::Variable& x) override;
};

// max(x, 0), or min(max(x, 0), 6) with max_value 6 (MobileNetV2's ReLU6).
class ReLU : public Module {
 public:
  explicit ReLU(std::optional<double> max_value = std::nullopt, std::string name = "");
  bool is_relu6() const { return max_value_.has_value(); }

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override;

 private:
  std::optional<double> max_value_;
};

}  // namespace petal::nn
