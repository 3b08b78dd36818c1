#include "nn/conv_layers.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/sync_batch_norm.hpp"

namespace petal::nn {

namespace {

ag::Conv2dOptions to_op_options(const Size2& strides, Padding padding) {
  ag::Conv2dOptions o;
  o.stride_h = strides.h;
  o.stride_w = strides.w;
  o.padding = padding;
  return o;
}

Shape spatial_output(const Shape& in, Size2 k, Size2 s, Padding padding, std::int64_t channels, const char* op) {
  return {ag::conv_output_size(in[0], k.h, s.h, padding, op), ag::conv_output_size(in[1], k.w, s.w, padding, op),
          channels};
}

}  // namespace

// ---- Conv2D ----

Conv2D::Conv2D(std::int64_t filters, Size2 kernel_size, ConvOptions options)
    : Module("Conv2D", "conv2d", options.name), filters_(filters), kernel_size_(kernel_size), options_(std::move(options)) {
  PETAL_CHECK(filters > 0 && kernel_size.h > 0 && kernel_size.w > 0 && options_.strides.h > 0 && options_.strides.w > 0,
              ValueError, "Conv2D \"", name(), "\": filters, kernel size and strides must be positive");
}

Shape Conv2D::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  kernel_ = add_parameter("kernel", options_.kernel_initializer({kernel_size_.h, kernel_size_.w, in[2], filters_}, gen));
  if (options_.use_bias) bias_ = add_parameter("bias", options_.bias_initializer({filters_}, gen));
  return spatial_output(in, kernel_size_, options_.strides, options_.padding, filters_, name().c_str());
}

ag::Variable Conv2D::forward_logits(const ag::Variable& x) {
  return ag::conv2d(x, kernel_, bias_, to_op_options(options_.strides, options_.padding));
}

ag::Variable Conv2D::forward(const ag::Variable& x) { return apply_activation(forward_logits(x), options_.activation.kind); }

// ---- DepthwiseConv2D ----

DepthwiseConv2D::DepthwiseConv2D(Size2 kernel_size, DepthwiseConvOptions options)
    : Module("DepthwiseConv2D", "depthwise_conv2d", options.name), kernel_size_(kernel_size), options_(std::move(options)) {
  PETAL_CHECK(kernel_size.h > 0 && kernel_size.w > 0 && options_.strides.h > 0 && options_.strides.w > 0 &&
                  options_.depth_multiplier > 0,
              ValueError, "DepthwiseConv2D \"", name(), "\": kernel size, strides and depth_multiplier must be positive");
}

Shape DepthwiseConv2D::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  const std::int64_t m = options_.depth_multiplier;
  kernel_ = add_parameter("depthwise_kernel",
                          options_.depthwise_initializer({kernel_size_.h, kernel_size_.w, in[2], m}, gen));
  if (options_.use_bias) bias_ = add_parameter("bias", options_.bias_initializer({in[2] * m}, gen));
  return spatial_output(in, kernel_size_, options_.strides, options_.padding, in[2] * m, name().c_str());
}

ag::Variable DepthwiseConv2D::forward(const ag::Variable& x) {
  ag::Variable y = ag::depthwise_conv2d(x, kernel_, bias_, to_op_options(options_.strides, options_.padding));
  return apply_activation(y, options_.activation.kind);
}

// ---- BatchNormalization ----

BatchNormalization::BatchNormalization(BatchNormOptions options)
    : Module("BatchNormalization", "batch_normalization", options.name), options_(std::move(options)) {
  PETAL_CHECK(options_.momentum >= 0.0 && options_.momentum <= 1.0 && options_.epsilon > 0.0, ValueError,
              "BatchNormalization \"", name(), "\": momentum must be in [0, 1] and epsilon positive");
}

Shape BatchNormalization::build_impl(const Shape& in) {
  check_input(!in.empty(), in, "needs a channel axis");
  const std::int64_t c = in.back();
  gamma_ = add_parameter("gamma", ones({c}));
  beta_ = add_parameter("beta", zeros({c}));
  moving_mean_ = add_buffer("moving_mean", zeros({c}));
  moving_variance_ = add_buffer("moving_variance", ones({c}));
  return in;
}

ag::BatchNormOptions BatchNormalization::op_options() const {
  ag::BatchNormOptions o;
  o.training = uses_batch_statistics();
  o.momentum = options_.momentum;
  o.epsilon = options_.epsilon;
  return o;
}

std::shared_ptr<ReplicaContext> BatchNormalization::synchronizing_replicas() const {
  if (!options_.synchronized || !uses_batch_statistics()) return nullptr;
  std::shared_ptr<ReplicaContext> replicas = ReplicaContext::current();
  return replicas && replicas->replicas() > 1 ? replicas : nullptr;
}

ag::Variable BatchNormalization::synchronized_forward(const ag::Variable& x, ag::BatchNormActivation activation,
                                                      const std::shared_ptr<ReplicaContext>& replicas) {
  ag::Variable y = sync_batch_norm(x, gamma_, beta_, moving_mean_.mutable_data(), moving_variance_.mutable_data(),
                                   options_.momentum, options_.epsilon, replicas);
  switch (activation) {
    case ag::BatchNormActivation::Relu: return ag::relu(y);
    case ag::BatchNormActivation::Relu6: return ag::relu6(y);
    case ag::BatchNormActivation::None: break;
  }
  return y;
}

ag::Variable BatchNormalization::forward(const ag::Variable& x) {
  if (auto replicas = synchronizing_replicas()) return synchronized_forward(x, ag::BatchNormActivation::None, replicas);
  return ag::batch_norm(x, gamma_, beta_, moving_mean_.mutable_data(), moving_variance_.mutable_data(), op_options());
}

ag::Variable BatchNormalization::forward_fused(const ag::Variable& x, ag::BatchNormActivation activation,
                                              const ag::Variable& input_bias) {
  if (auto replicas = synchronizing_replicas())
    return synchronized_forward(input_bias.defined() ? ag::add(x, input_bias) : x, activation, replicas);
  return ag::batch_norm_activation(x, gamma_, beta_, moving_mean_.mutable_data(), moving_variance_.mutable_data(),
                                   op_options(), activation, input_bias);
}

ag::Variable BatchNormalization::forward_after_conv(ag::ConvKind kind, const ag::Variable& x,
                                                   const ag::Variable& kernel, const ag::Variable& bias,
                                                   const ag::Conv2dOptions& conv_options,
                                                   ag::BatchNormActivation activation) {
  if (auto replicas = synchronizing_replicas()) {
    const ag::Variable y = kind == ag::ConvKind::Depthwise ? ag::depthwise_conv2d(x, kernel, bias, conv_options)
                                                           : ag::conv2d(x, kernel, bias, conv_options);
    return synchronized_forward(y, activation, replicas);
  }
  return ag::conv_batch_norm(kind, x, kernel, bias, gamma_, beta_, moving_mean_.mutable_data(),
                             moving_variance_.mutable_data(), conv_options, op_options(), activation);
}

ag::ConvBatchNormStage BatchNormalization::stage_after_conv(ag::ConvKind kind, const ag::Variable& kernel,
                                                            const ag::Variable& bias,
                                                            const ag::Conv2dOptions& conv_options,
                                                            ag::BatchNormActivation activation) {
  ag::ConvBatchNormStage stage;
  stage.kind = kind;
  stage.kernel = kernel;
  stage.bias = bias;
  stage.gamma = gamma_;
  stage.beta = beta_;
  stage.moving_mean = &moving_mean_.mutable_data();
  stage.moving_variance = &moving_variance_.mutable_data();
  stage.conv = conv_options;
  stage.bn = op_options();
  stage.activation = activation;
  return stage;
}

int set_synchronized_batch_norm(Module& model, bool synchronized) {
  int count = 0;
  if (auto* bn = dynamic_cast<BatchNormalization*>(&model)) {
    bn->set_synchronized(synchronized);
    ++count;
  }
  for (const auto& child : model.children()) count += set_synchronized_batch_norm(*child, synchronized);
  return count;
}

// ---- ZeroPadding2D ----

ZeroPadding2D::ZeroPadding2D(std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right,
                             std::string name)
    : Module("ZeroPadding2D", "zero_padding2d", std::move(name)), top_(top), bottom_(bottom), left_(left), right_(right) {
  PETAL_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, ValueError, "ZeroPadding2D \"", this->name(),
              "\": padding must be non-negative");
}
ZeroPadding2D::ZeroPadding2D(std::int64_t all, std::string name) : ZeroPadding2D(all, all, all, all, std::move(name)) {}

Shape ZeroPadding2D::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  return {in[0] + top_ + bottom_, in[1] + left_ + right_, in[2]};
}

ag::Variable ZeroPadding2D::forward(const ag::Variable& x) { return ag::zero_pad2d(x, top_, bottom_, left_, right_); }

// ---- pooling ----

Shape GlobalPooling2D::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  return {in[2]};
}

GlobalAveragePooling2D::GlobalAveragePooling2D(std::string name)
    : GlobalPooling2D("GlobalAveragePooling2D", "global_average_pooling2d", std::move(name)) {}

ag::Variable GlobalAveragePooling2D::forward(const ag::Variable& x) { return ag::global_average_pool2d(x); }

GlobalMaxPooling2D::GlobalMaxPooling2D(std::string name)
    : GlobalPooling2D("GlobalMaxPooling2D", "global_max_pooling2d", std::move(name)) {}

// One max-pooling window over the whole image, then [N, 1, 1, C] -> [N, C].
ag::Variable GlobalMaxPooling2D::forward(const ag::Variable& x) {
  const Shape& s = x.shape();
  return ag::reshape(ag::max_pool2d(x, s[1], s[2], to_op_options(Size2(s[1], s[2]), Padding::Valid)), {s[0], s[3]});
}

Pooling2D::Pooling2D(std::string type_name, std::string_view base_name, Size2 pool_size, PoolOptions options)
    : Module(std::move(type_name), base_name, options.name), pool_(pool_size), options_(std::move(options)) {}

Shape Pooling2D::build_impl(const Shape& in) {
  check_input(in.size() == 3, in, "must be (height, width, channels)");
  return spatial_output(in, pool_, strides(), padding(), in[2], name().c_str());
}

AveragePooling2D::AveragePooling2D(Size2 pool_size, PoolOptions options)
    : Pooling2D("AveragePooling2D", "average_pooling2d", pool_size, std::move(options)) {}

ag::Variable AveragePooling2D::forward(const ag::Variable& x) {
  return ag::average_pool2d(x, pool_size().h, pool_size().w, to_op_options(strides(), padding()));
}

MaxPooling2D::MaxPooling2D(Size2 pool_size, PoolOptions options)
    : Pooling2D("MaxPooling2D", "max_pooling2d", pool_size, std::move(options)) {}

ag::Variable MaxPooling2D::forward(const ag::Variable& x) {
  return ag::max_pool2d(x, pool_size().h, pool_size().w, to_op_options(strides(), padding()));
}

// ---- ReLU ----

ReLU::ReLU(std::optional<double> max_value, std::string name)
    : Module("ReLU", "re_lu", std::move(name)), max_value_(max_value) {
  PETAL_CHECK(!max_value || *max_value == 6.0, ValueError, "ReLU \"", this->name(),
              "\": max_value must be absent or 6 (ReLU6), got ", *max_value);
}

ag::Variable ReLU::forward(const ag::Variable& x) { return max_value_ ? ag::relu6(x) : ag::relu(x); }

}  // namespace petal::nn
