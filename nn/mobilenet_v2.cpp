#include "nn/mobilenet_v2.hpp"

#include <cmath>
#include <cstdio>
#include <set>

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/keras_h5.hpp"

namespace petal::nn {

namespace {

constexpr double kBatchNormMomentum = 0.999;
constexpr double kBatchNormEpsilon = 1e-3;

// Keras's Add layer, listed in the structure (block_N_add) like the model
// summary shows it. It has two inputs, so MobileNetV2 calls add() itself; the
// one-input Module call is refused.
class AddLayer : public Module {
 public:
  explicit AddLayer(std::string name) : Module("Add", "add", std::move(name)) {}
  static ag::Variable add(const ag::Variable& a, const ag::Variable& b) { return ag::add(a, b); }

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable&) override {
    throw ValueError(str_cat("Add layer \"", name(), "\" takes two inputs; it runs inside its model's forward"));
  }
};

ag::Variable find_weight(const Module& layer, const std::string& local_name) {
  const std::string full = layer.name() + "/" + local_name;
  for (const WeightRef& w : layer.weights())
    if (w.name == full) return w.variable;
  throw ValueError(str_cat("MobileNetV2: layer \"", layer.name(), "\" has no weight \"", local_name, "\""));
}

std::string default_name(const MobileNetV2Options& o) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "mobilenetv2_%.2f_%lld", o.alpha,
                static_cast<long long>(o.input_shape.empty() ? 0 : o.input_shape[0]));
  return buffer;
}

}  // namespace

std::int64_t make_divisible(double v, std::int64_t divisor) {
  const double d = static_cast<double>(divisor);
  std::int64_t rounded = static_cast<std::int64_t>(v + d / 2) / divisor * divisor;
  if (rounded < divisor) rounded = divisor;
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

MobileNetV2::MobileNetV2(Shape input_shape, double alpha, bool include_top, std::string pooling)
    : MobileNetV2(MobileNetV2Options{std::move(input_shape), alpha, include_top, std::move(pooling)}) {}

MobileNetV2::MobileNetV2(MobileNetV2Options options)
    : Module("Functional", "mobilenetv2", options.name.empty() ? default_name(options) : options.name),
      options_(std::move(options)) {
  const Shape& in = options_.input_shape;
  PETAL_CHECK(in.size() == 3 && in[2] == 3 && in[0] >= 32 && in[1] >= 32, ShapeError, "MobileNetV2 \"", name(),
              "\": input_shape must be (height, width, 3) with both sides >= 32, got ", keras_shape_str(in));
  PETAL_CHECK(options_.alpha > 0.0, ValueError, "MobileNetV2 \"", name(), "\": alpha must be positive, got ",
              options_.alpha);
  PETAL_CHECK(options_.pooling.empty() || options_.pooling == "avg" || options_.pooling == "max", ValueError,
              "MobileNetV2 \"", name(), "\": pooling must be \"\", \"avg\" or \"max\", got \"",
              options_.pooling, "\"");
  PETAL_CHECK(!options_.include_top || options_.classes > 0, ValueError, "MobileNetV2 \"", name(),
              "\": classes must be positive");
  const double alpha = options_.alpha;

  const std::int64_t first_filters = make_divisible(32 * alpha, 8);
  stem_ = add_conv_unit(ag::ConvKind::Conv2d, "Conv1", "bn_Conv1", "Conv1_relu", first_filters, 3, 2);

  struct Spec {
    std::int64_t filters, stride, expansion;
  };
  static constexpr Spec kBlocks[17] = {{16, 1, 1},  {24, 2, 6},  {24, 1, 6},  {32, 2, 6},  {32, 1, 6},  {32, 1, 6},
                                       {64, 2, 6},  {64, 1, 6},  {64, 1, 6},  {64, 1, 6},  {96, 1, 6},  {96, 1, 6},
                                       {96, 1, 6},  {160, 2, 6}, {160, 1, 6}, {160, 1, 6}, {320, 1, 6}};
  std::int64_t channels = first_filters;
  std::int64_t height = (in[0] + 1) / 2, width = (in[1] + 1) / 2;  // after Conv1 ("same", stride 2)
  for (int id = 0; id < 17; ++id) {
    add_inverted_residual_block(id, channels, kBlocks[id].filters, kBlocks[id].stride, kBlocks[id].expansion, height,
                                width);
    if (kBlocks[id].stride == 2) height = (height + 1) / 2, width = (width + 1) / 2;
    channels = make_divisible(static_cast<double>(static_cast<std::int64_t>(kBlocks[id].filters * alpha)), 8);
  }

  const std::int64_t last_filters = alpha > 1.0 ? make_divisible(1280 * alpha, 8) : 1280;
  last_conv_ = add_conv_unit(ag::ConvKind::Conv2d, "Conv_1", "Conv_1_bn", "out_relu", last_filters, 1, 1);

  // Keras ignores `pooling` when the top is included.
  if (options_.include_top || options_.pooling == "avg") {
    auto pool = std::make_shared<GlobalAveragePooling2D>("global_average_pooling2d");
    pool_ = pool.get();
    add_child(pool);
  } else if (options_.pooling == "max") {
    auto pool = std::make_shared<GlobalMaxPooling2D>("global_max_pooling2d");
    pool_ = pool.get();
    add_child(pool);
  }
  if (options_.include_top) {
    DenseOptions dense_options;
    dense_options.name = "predictions";
    auto dense = std::make_shared<Dense>(options_.classes, "softmax", dense_options);
    predictions_ = dense.get();
    add_child(dense);
  }

  set_input_shape(in);
  build(in);
}

MobileNetV2::ConvUnit MobileNetV2::add_conv_unit(ag::ConvKind kind, const std::string& conv_name,
                                                 const std::string& bn_name, const std::string& relu_name,
                                                 std::int64_t filters, std::int64_t kernel, std::int64_t stride) {
  ConvUnit unit;
  unit.kind = kind;
  unit.stride = stride;
  unit.relu6 = !relu_name.empty();
  // The layers carry Keras's padding: 'valid' after an explicit pad layer for
  // stride-2 depthwise convs, 'same' elsewhere (see the header).
  if (kind == ag::ConvKind::Conv2d) {
    ConvOptions o;
    o.strides = stride;
    o.padding = Padding::Same;
    o.use_bias = false;
    o.name = conv_name;
    auto conv = std::make_shared<Conv2D>(filters, kernel, o);
    unit.conv = conv.get();
    add_child(conv);
  } else {
    DepthwiseConvOptions o;
    o.strides = stride;
    o.padding = stride == 1 ? Padding::Same : Padding::Valid;
    o.use_bias = false;
    o.name = conv_name;
    auto conv = std::make_shared<DepthwiseConv2D>(kernel, o);
    unit.conv = conv.get();
    add_child(conv);
  }
  BatchNormOptions bn_options;
  bn_options.momentum = kBatchNormMomentum;
  bn_options.epsilon = kBatchNormEpsilon;
  bn_options.name = bn_name;
  auto bn = std::make_shared<BatchNormalization>(bn_options);
  unit.bn = bn.get();
  add_child(bn);
  if (unit.relu6) add_child(std::make_shared<ReLU>(6.0, relu_name));
  return unit;
}

void MobileNetV2::add_inverted_residual_block(int block_id, std::int64_t in_channels, std::int64_t filters,
                                              std::int64_t stride, std::int64_t expansion, std::int64_t height,
                                              std::int64_t width) {
  const std::int64_t pointwise_filters =
      make_divisible(static_cast<double>(static_cast<std::int64_t>(filters * options_.alpha)), 8);
  const std::string prefix = block_id == 0 ? "expanded_conv_" : "block_" + std::to_string(block_id) + "_";
  Block block;
  if (block_id != 0) {
    block.has_expand = true;
    block.expand = add_conv_unit(ag::ConvKind::Conv2d, prefix + "expand", prefix + "expand_BN", prefix + "expand_relu",
                                 expansion * in_channels, 1, 1);
  }
  if (stride == 2) {
    // Keras's ZeroPadding2D(correct_pad(x, 3)): 1 after, and 1 before too
    // when the size is odd. The forward pads through the conv ("same").
    const std::int64_t top = height % 2, left = width % 2;
    add_child(std::make_shared<ZeroPadding2D>(top, 1, left, 1, prefix + "pad"));
  }
  // filters 0: a depthwise conv keeps its channel count (depth multiplier 1).
  block.depthwise = add_conv_unit(ag::ConvKind::Depthwise, prefix + "depthwise", prefix + "depthwise_BN",
                                  prefix + "depthwise_relu", 0, 3, stride);
  block.project = add_conv_unit(ag::ConvKind::Conv2d, prefix + "project", prefix + "project_BN", "",
                                pointwise_filters, 1, 1);
  block.first_layer = block.has_expand ? block.expand.conv : block.depthwise.conv;
  block.residual = in_channels == pointwise_filters && stride == 1;
  if (block.residual) {
    auto add = std::make_shared<AddLayer>(prefix + "add");
    block.add_layer = add.get();
    add_child(add);
  }
  blocks_.push_back(block);
}

Shape MobileNetV2::build_impl(const Shape& input_shape) {
  Shape shape = input_shape;
  for (const auto& layer : children()) {
    layer->build(shape);
    shape = layer->output_shape();
  }
  stem_.bind();
  for (Block& block : blocks_) {
    if (block.has_expand) block.expand.bind();
    block.depthwise.bind();
    block.project.bind();
  }
  last_conv_.bind();
  return shape;
}

void MobileNetV2::ConvUnit::bind() {
  kernel = find_weight(*conv, kind == ag::ConvKind::Conv2d ? "kernel" : "depthwise_kernel");
  gamma = find_weight(*bn, "gamma");
  beta = find_weight(*bn, "beta");
  moving_mean = find_weight(*bn, "moving_mean");
  moving_variance = find_weight(*bn, "moving_variance");
}

ag::Variable MobileNetV2::ConvUnit::run(const ag::Variable& x) const {
  ag::Conv2dOptions conv_options;
  conv_options.stride_h = conv_options.stride_w = stride;
  conv_options.padding = ag::Padding::Same;
  ag::BatchNormOptions bn_options;
  bn_options.training = bn->uses_batch_statistics();
  bn_options.momentum = kBatchNormMomentum;
  bn_options.epsilon = kBatchNormEpsilon;
  // The op updates the moving statistics in place in training mode; the
  // handles share the BN layer's storage.
  ag::Variable mean = moving_mean, variance = moving_variance;
  return ag::conv_batch_norm(kind, x, kernel, gamma, beta, mean.mutable_data(), variance.mutable_data(), conv_options,
                             bn_options, relu6);
}

ag::Variable MobileNetV2::features(const ag::Variable& x) {
  ag::Variable y = stem_.run(x);
  for (const Block& block : blocks_) {
    ag::Variable h = block.has_expand ? block.expand.run(y) : y;
    h = block.project.run(block.depthwise.run(h));
    y = block.residual ? AddLayer::add(y, h) : h;
  }
  y = last_conv_.run(y);
  if (pool_) y = (*pool_)(y);
  return y;
}

ag::Variable MobileNetV2::forward(const ag::Variable& x) {
  ag::Variable y = features(x);
  return predictions_ ? (*predictions_)(y) : y;
}

ag::Variable MobileNetV2::forward_logits(const ag::Variable& x) {
  ag::Variable y = features(x);
  return predictions_ ? predictions_->call_logits(y) : y;
}

LoadReport MobileNetV2::load_weights(const std::filesystem::path& path) {
  if (is_keras_h5(weight_file_format(path))) return load_keras_weights(path);
  // Missing names are checked before any weight changes (load_weights by
  // name would skip them silently); shapes are checked by load_weights.
  std::vector<std::string> missing;
  {
    SafetensorsReader reader(path);
    for (const WeightRef& w : weights())
      if (!reader.find(w.name)) missing.push_back(w.name);
  }
  throw_if_missing(path, missing);
  LoadOptions options;
  options.by_name = true;
  return nn::load_weights(*this, path, options);
}

// Keras's own rule (layers paired by order) when the file has as many
// weighted layers as this model: the official files name the classifier
// Logits, not predictions. Otherwise by name (a base from a file with top).
LoadReport MobileNetV2::load_keras_weights(const std::filesystem::path& path) {
  LoadOptions options;
  options.by_name = keras_h5_weighted_layer_count(path) != keras_weighted_layer_count(*this);
  LoadReport report = load_keras_h5(*this, path, options);
  if (options.by_name) {
    const std::set<std::string> loaded(report.loaded.begin(), report.loaded.end());
    std::vector<std::string> missing;
    for (const WeightRef& w : weights())
      if (!loaded.count(w.name)) missing.push_back(w.name);
    throw_if_missing(path, missing);
  }
  return report;
}

void MobileNetV2::throw_if_missing(const std::filesystem::path& path, const std::vector<std::string>& missing) const {
  if (missing.empty()) return;
  std::string message = str_cat(path.string(), ": MobileNetV2 \"", name(), "\" needs ", missing.size(),
                                " weight(s) the file does not have:");
  for (std::size_t i = 0; i < missing.size() && i < 10; ++i) message += "\n  " + missing[i];
  if (missing.size() > 10) message += str_cat("\n  ... and ", missing.size() - 10, " more");
  throw FormatError(message);
}

std::vector<MobileNetV2::ResidualLink> MobileNetV2::residual_links() const {
  std::vector<ResidualLink> links;
  for (const Block& block : blocks_)
    if (block.residual) links.push_back({block.first_layer, block.add_layer});
  return links;
}

void MobileNetV2::freeze_batch_norm() {
  for (const auto& layer : children())
    if (auto* bn = dynamic_cast<BatchNormalization*>(layer.get())) bn->set_trainable(false);
}

}  // namespace petal::nn
