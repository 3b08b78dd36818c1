// The petal side of tests/interop/onnx_interop.py: builds a model with seeded
// random weights (or loads a weight file), runs petal's forward pass on raw float32 NHWC input, writes
// the raw float32 output and exports the model as ONNX.
//
//   onnx_export_tool --model mobilenet|lab|dense|misc --size S [--classes K] [--head flatten|gap]
//       --random SEED|--weights FILE --input RAW --batch N --output RAW --onnx FILE
//
//   mobilenet: MobileNetV2 with its top (K classes, default 1000)
//   lab:       Sequential[MobileNetV2 without top (frozen), Flatten or GAP, Dense(5, softmax)]
//   dense:     flowers_dense's Sequential[Flatten, Dense(500, relu), Dense(50, relu), Dense(5, softmax)]
//   misc:      the other translations: a Pad node, unfolded BatchNormalization, a conv with bias and
//              activation, non-square kernel and strides, depth multiplier 2, Residual, Dense on 4-D
//              input (MatMul + Add), GlobalMaxPool, Dropout, tanh, sigmoid, relu6
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
#include "tests/interop/interop_tool_support.hpp"
#include "nn/onnx_export.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::shared_ptr<Module> build(const std::string& kind, std::int64_t size, std::int64_t classes,
                              const std::string& head) {
  MobileNetV2Options options;
  options.input_shape = {size, size, 3};
  if (kind == "mobilenet") {
    options.classes = classes;
    return std::make_shared<MobileNetV2>(options);
  }
  if (kind == "lab") {
    options.include_top = false;
    auto base = std::make_shared<MobileNetV2>(options);
    base->set_trainable(false);  // the lab's pretrained_model.trainable = False
    std::shared_ptr<Module> pooling;
    if (head == "gap") pooling = std::make_shared<GlobalAveragePooling2D>();
    else pooling = std::make_shared<Flatten>();
    return std::make_shared<Sequential>(
        std::vector<std::shared_ptr<Module>>{base, pooling, std::make_shared<Dense>(5, "softmax")});
  }
  if (kind == "misc") {
    ConvOptions conv;
    conv.strides = {2, 1};
    conv.padding = Padding::Same;
    conv.activation = "relu";
    DepthwiseConvOptions depthwise;
    depthwise.strides = 2;
    depthwise.depth_multiplier = 2;
    depthwise.activation = "sigmoid";
    return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        std::make_shared<InputLayer>(Shape{size, size, 3}), std::make_shared<ZeroPadding2D>(1, 2, 0, 1),
        std::make_shared<BatchNormalization>(), std::make_shared<Conv2D>(6, Size2{3, 2}, conv),
        std::make_shared<BatchNormalization>(), std::make_shared<Residual>(std::make_shared<Activation>("tanh")),
        std::make_shared<DepthwiseConv2D>(3, depthwise), std::make_shared<Dense>(5),
        std::make_shared<GlobalMaxPooling2D>(), std::make_shared<Dropout>(0.5), std::make_shared<Dense>(8, "relu6"),
        std::make_shared<Dense>(4, "softmax")});
  }
  PETAL_CHECK(kind == "dense", ValueError, "unknown --model ", kind);
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Flatten>(Shape{size, size, 3}), std::make_shared<Dense>(500, "relu"),
      std::make_shared<Dense>(50, "relu"), std::make_shared<Dense>(5, "softmax")});
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const interop::ToolArgs arg(argc, argv);
    const std::int64_t size = std::stoll(arg("--size"));
    std::shared_ptr<Module> model = build(arg("--model"), size, std::stoll(arg("--classes", "1000")),
                                          arg("--head", "flatten"));
    interop::run_on_input_file(*model, arg);
    petal::onnx::export_model(*model, arg("--onnx"));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onnx_export_tool: %s\n", e.what());
    return 1;
  }
}
