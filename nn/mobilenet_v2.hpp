// MobileNetV2 (Sandler et al. 2018) with tf.keras.applications' exact
// structure, layer names and weight names, so Keras-layout ImageNet weights
// (../shared/models/mobilenet_v2_1.0_imagenet.safetensors) load by name:
//
//   Conv1 / bn_Conv1 / Conv1_relu
//   expanded_conv_depthwise(_BN, _relu) / expanded_conv_project(_BN)
//   block_N_expand(_BN, _relu), block_N_pad (stride 2 only),
//   block_N_depthwise(_BN, _relu), block_N_project(_BN), block_N_add   N = 1..16
//   Conv_1 / Conv_1_bn / out_relu
//   include_top: global_average_pooling2d + predictions (Dense, softmax)
//
// Every convolution has no bias and is followed by BatchNormalization
// (epsilon 1e-3, momentum 0.999); ReLU6 after Conv1, every expand, every
// depthwise and Conv_1, none after a projection; the residual add where a
// block keeps stride 1 and its channel count (blocks 2, 4, 5, 7-9, 11, 12, 14, 15).
//
// It is a functional model (nn::Model) built as Keras builds it: an
// InputLayer, then every layer above called on the previous one's output,
// block_N_add an Add of the block's input and its projection. Model runs
// each convolution + BN (+ ReLU6) as one fused autograd op
// (ag::conv_batch_norm), and applies block_N_pad (Keras's ZeroPadding2D with
// correct_pad, then a 'valid' depthwise conv) as TensorFlow "same" padding of
// the depthwise conv: correct_pad equals SAME for a 3x3 stride-2 window at
// every input size (0 before / 1 after when even, 1 / 1 when odd), so no
// padded copy of the activation is made.
//
// Frozen BatchNormalization follows Keras (see conv_layers.hpp): a BN layer
// whose trainable flag is false runs in inference mode even in fit(), so
// set_trainable(false) on the whole model makes it a fixed feature
// extractor. For fine-tuning, set_trainable(true) then freeze_batch_norm():
// the convolutions train while every BN layer stays in inference mode with
// fixed gamma/beta (the Keras fine-tuning guide keeps BN in inference mode).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"
#include "nn/model.hpp"
#include "nn/weights_io.hpp"

namespace petal::nn {

struct MobileNetV2Options {
  Shape input_shape = {224, 224, 3};  // (height, width, 3), both sides >= 32
  double alpha = 1.0;                 // width multiplier
  bool include_top = true;            // global average pool + predictions
  std::string pooling = "";           // without top: "" (4-D features), "avg" or "max"
  std::int64_t classes = 1000;
  std::string name = "";  // default "mobilenetv2_<alpha %.2f>_<height>" like Keras
};

class MobileNetV2 : public Model {
 public:
  explicit MobileNetV2(MobileNetV2Options options = {});
  MobileNetV2(Shape input_shape, double alpha = 1.0, bool include_top = true, std::string pooling = "");

  const MobileNetV2Options& options() const { return options_; }

  // Loads Keras-named weights from safetensors or a Keras .h5 (the official
  // keras-applications files included). Every weight of this model must be
  // in the file (FormatError listing the missing ones otherwise); tensors
  // the model does not have (predictions/* when include_top is false) are
  // ignored.
  LoadReport load_weights(const std::filesystem::path& path);

  // Makes every BatchNormalization layer non-trainable (inference mode,
  // gamma/beta fixed) while the convolutions keep their trainable flag.
  void freeze_batch_norm();

 private:
  struct Graph;
  MobileNetV2(MobileNetV2Options options, Graph graph);
  static Graph make_graph(const MobileNetV2Options& options);
  LoadReport load_keras_weights(const std::filesystem::path& path);
  void throw_if_missing(const std::filesystem::path& path, const std::vector<std::string>& missing) const;

  MobileNetV2Options options_;
};

// Keras's _make_divisible: rounds v to the nearest multiple of `divisor`, never
// going below 90% of v.
std::int64_t make_divisible(double v, std::int64_t divisor = 8);

}  // namespace petal::nn
