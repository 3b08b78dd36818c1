// ONNX export of petal models as they run in inference mode, serialized with
// petal's own protobuf encoder (data/protobuf_wire.hpp), without libprotobuf.
//
// The file (IR version 8, default-domain opset 17) holds one graph:
// - one input, "input": the float32 batch the petal model takes, already
//   preprocessed (x/127.5-1 for MobileNetV2), channels last [N, H, W, C] (or
//   [N, D] for a model over vectors) with the batch dimension symbolic, "N";
// - one output: the model's output ([N, classes] probabilities for a
//   classifier), named after the layer that produces it.
// Convolutions run channels first inside the graph: a Transpose to NCHW goes
// in before the first one, and one back to NHWC before a Flatten (so Dense
// kernels see Keras's HWC order) or a 4-D output.
//
// Layers and what they become:
//   Conv2D, DepthwiseConv2D   Conv (depthwise: group = channels), TensorFlow's
//                             "same" padding as explicit, possibly asymmetric, pads
//   BatchNormalization        right after a convolution without activation:
//                             folded into its kernel and bias; else
//                             BatchNormalization (moving statistics)
//   ZeroPadding2D             right before a convolution: added to its pads; else Pad
//   ReLU, activations         Relu, Clip (ReLU6), Sigmoid, Tanh, Softmax
//   Global{Average,Max}Pooling2D   GlobalAveragePool / GlobalMaxPool + Flatten
//   Flatten                   Flatten
//   Dense                     Gemm (2-D input), else MatMul + Add
//   Input, Dropout            nothing (identities at inference)
//   Sequential, Residual, MobileNetV2   their layers in order, with Add for
//                             the residual connections
// Any other layer is a ValueError naming it. BatchNormalization always uses
// its moving statistics, whatever the model's training flag.
//
// Initializers are the model's weights under their petal names (Dense kernels
// [in, units] as stored; conv kernels transposed to OIHW, depthwise ones
// [C * multiplier, 1, kh, kw]). A folded convolution keeps its own names: with
// s = gamma / sqrt(moving_variance + epsilon), "<conv>/kernel" holds kernel * s
// and "<conv>/bias" holds beta + (bias - moving_mean) * s, each computed in
// double and rounded to float once. Graph constants that are not weights
// (Clip bounds, Pad amounts) are Constant nodes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "nn/module.hpp"

namespace petal::onnx {

inline constexpr std::int64_t kIrVersion = 8;
inline constexpr std::int64_t kOpsetVersion = 17;

struct ExportOptions {
  std::string input_name = "input";
  std::string batch_dim_param = "N";  // the symbolic batch dimension
};

// The serialized ModelProto of `model`, which must be built.
std::string model_to_onnx(const nn::Module& model, const ExportOptions& options = {});

// Writes model_to_onnx(model) to `path` atomically (core/atomic_file.hpp).
void export_model(const nn::Module& model, const std::filesystem::path& path, const ExportOptions& options = {});

}  // namespace petal::onnx
