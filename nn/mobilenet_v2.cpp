#include "nn/mobilenet_v2.hpp"

#include <cmath>
#include <cstdio>
#include <set>

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/keras_h5.hpp"
#include "nn/merge_layers.hpp"

namespace petal::nn {

namespace {

constexpr double kBatchNormMomentum = 0.999;
constexpr double kBatchNormEpsilon = 1e-3;

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

struct MobileNetV2::Graph {
  SymbolicTensor input, output;
  std::string name;
};

MobileNetV2::MobileNetV2(MobileNetV2Options options) : MobileNetV2(options, make_graph(options)) {}

MobileNetV2::MobileNetV2(MobileNetV2Options options, Graph graph)
    : Model(graph.input, graph.output, graph.name), options_(std::move(options)) {}

namespace {

// conv + BN (+ ReLU6), Keras-named. The layers carry Keras's padding: 'valid'
// after an explicit pad layer for stride-2 depthwise convs, 'same' elsewhere.
SymbolicTensor conv_unit(const SymbolicTensor& x, ag::ConvKind kind, const std::string& conv_name,
                         const std::string& bn_name, const std::string& relu_name, std::int64_t filters,
                         std::int64_t kernel, std::int64_t stride) {
  SymbolicTensor y;
  if (kind == ag::ConvKind::Conv2d) {
    ConvOptions o;
    o.strides = stride;
    o.padding = Padding::Same;
    o.use_bias = false;
    o.name = conv_name;
    y = layer<Conv2D>(filters, kernel, o)(x);
  } else {
    DepthwiseConvOptions o;
    o.strides = stride;
    o.padding = stride == 1 ? Padding::Same : Padding::Valid;
    o.use_bias = false;
    o.name = conv_name;
    y = layer<DepthwiseConv2D>(kernel, o)(x);
  }
  BatchNormOptions bn_options;
  bn_options.momentum = kBatchNormMomentum;
  bn_options.epsilon = kBatchNormEpsilon;
  bn_options.name = bn_name;
  y = layer<BatchNormalization>(bn_options)(y);
  if (!relu_name.empty()) y = layer<ReLU>(6.0, relu_name)(y);
  return y;
}

SymbolicTensor inverted_residual_block(const SymbolicTensor& x, int block_id, double alpha, std::int64_t filters,
                                       std::int64_t stride, std::int64_t expansion) {
  const std::int64_t in_channels = x.shape()[2];
  const std::int64_t pointwise_filters =
      make_divisible(static_cast<double>(static_cast<std::int64_t>(filters * alpha)), 8);
  const std::string prefix = block_id == 0 ? "expanded_conv_" : "block_" + std::to_string(block_id) + "_";
  SymbolicTensor h = x;
  if (block_id != 0)
    h = conv_unit(h, ag::ConvKind::Conv2d, prefix + "expand", prefix + "expand_BN", prefix + "expand_relu",
                  expansion * in_channels, 1, 1);
  if (stride == 2) {
    // Keras's ZeroPadding2D(correct_pad(x, 3)): 1 after, and 1 before too
    // when the size is odd.
    const std::int64_t top = h.shape()[0] % 2, left = h.shape()[1] % 2;
    h = layer<ZeroPadding2D>(top, 1, left, 1, prefix + "pad")(h);
  }
  // filters 0: a depthwise conv keeps its channel count (depth multiplier 1).
  h = conv_unit(h, ag::ConvKind::Depthwise, prefix + "depthwise", prefix + "depthwise_BN", prefix + "depthwise_relu",
                0, 3, stride);
  h = conv_unit(h, ag::ConvKind::Conv2d, prefix + "project", prefix + "project_BN", "", pointwise_filters, 1, 1);
  if (in_channels == pointwise_filters && stride == 1) return layer<Add>(prefix + "add")({x, h});
  return h;
}

}  // namespace

MobileNetV2::Graph MobileNetV2::make_graph(const MobileNetV2Options& options) {
  const std::string name = options.name.empty() ? default_name(options) : options.name;
  const Shape& in = options.input_shape;
  PETAL_CHECK(in.size() == 3 && in[2] == 3 && in[0] >= 32 && in[1] >= 32, ShapeError, "MobileNetV2 \"", name,
              "\": input_shape must be (height, width, 3) with both sides >= 32, got ", keras_shape_str(in));
  PETAL_CHECK(options.alpha > 0.0, ValueError, "MobileNetV2 \"", name, "\": alpha must be positive, got ",
              options.alpha);
  PETAL_CHECK(options.pooling.empty() || options.pooling == "avg" || options.pooling == "max", ValueError,
              "MobileNetV2 \"", name, "\": pooling must be \"\", \"avg\" or \"max\", got \"", options.pooling, "\"");
  PETAL_CHECK(!options.include_top || options.classes > 0, ValueError, "MobileNetV2 \"", name,
              "\": classes must be positive");
  const double alpha = options.alpha;

  // Keras names the input "input_layer" with its own counter; petal's
  // structural paths do not depend on it.
  const SymbolicTensor input = Input(in);
  const std::int64_t first_filters = make_divisible(32 * alpha, 8);
  SymbolicTensor x = conv_unit(input, ag::ConvKind::Conv2d, "Conv1", "bn_Conv1", "Conv1_relu", first_filters, 3, 2);

  struct Spec {
    std::int64_t filters, stride, expansion;
  };
  static constexpr Spec kBlocks[17] = {{16, 1, 1},  {24, 2, 6},  {24, 1, 6},  {32, 2, 6},  {32, 1, 6},  {32, 1, 6},
                                       {64, 2, 6},  {64, 1, 6},  {64, 1, 6},  {64, 1, 6},  {96, 1, 6},  {96, 1, 6},
                                       {96, 1, 6},  {160, 2, 6}, {160, 1, 6}, {160, 1, 6}, {320, 1, 6}};
  for (int id = 0; id < 17; ++id)
    x = inverted_residual_block(x, id, alpha, kBlocks[id].filters, kBlocks[id].stride, kBlocks[id].expansion);

  const std::int64_t last_filters = alpha > 1.0 ? make_divisible(1280 * alpha, 8) : 1280;
  x = conv_unit(x, ag::ConvKind::Conv2d, "Conv_1", "Conv_1_bn", "out_relu", last_filters, 1, 1);

  // Keras ignores `pooling` when the top is included.
  if (options.include_top || options.pooling == "avg")
    x = layer<GlobalAveragePooling2D>("global_average_pooling2d")(x);
  else if (options.pooling == "max")
    x = layer<GlobalMaxPooling2D>("global_max_pooling2d")(x);
  if (options.include_top) {
    DenseOptions dense_options;
    dense_options.name = "predictions";
    x = layer<Dense>(options.classes, "softmax", dense_options)(x);
  }
  return {input, x, name};
}

LoadReport MobileNetV2::load_weights(const std::filesystem::path& path) {
  if (is_keras_h5(weight_file_format(path))) return load_keras_weights(path);
  // Missing names are checked before any weight changes (load_weights by
  // name would skip them silently); shapes are checked by load_weights.
  std::vector<std::string> missing;
  {
    SafetensorsReader reader(path);
    for (const WeightRef& w : weights())
      if (!reader.find(w.path)) missing.push_back(w.path);
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

void MobileNetV2::freeze_batch_norm() {
  for (const auto& layer : children())
    if (auto* bn = dynamic_cast<BatchNormalization*>(layer.get())) bn->set_trainable(false);
}

}  // namespace petal::nn
