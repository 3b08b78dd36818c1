// The petal side of tests/interop/keras_interop.py: builds MobileNetV2 or the
// lab's transfer model, loads Keras weights (or makes seeded random ones),
// runs the forward pass on raw float32 NHWC input, writes the raw float32
// output, and optionally saves the weights as a Keras .h5.
//
//   keras_weights_tool --model mobilenet|lab --size S [--classes K]
//       [--weights FILE | --random SEED] --input RAW --batch N --output RAW [--save FILE.h5]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/nn.hpp"
#include "nn/mobilenet_v2.hpp"
#include "tests/interop/interop_tool_support.hpp"

using namespace petal;
using namespace petal::nn;

int main(int argc, char** argv) {
  try {
    const interop::ToolArgs arg(argc, argv);
    const std::int64_t size = std::stoll(arg("--size"));
    std::shared_ptr<Module> model;
    MobileNetV2Options options;
    options.input_shape = {size, size, 3};
    if (arg("--model") == "mobilenet") {
      options.classes = std::stoll(arg("--classes", "1000"));
      model = std::make_shared<MobileNetV2>(options);
    } else {
      options.include_top = false;
      auto base = std::make_shared<MobileNetV2>(options);
      base->set_trainable(false);  // the lab's pretrained_model.trainable = False
      model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
          base, std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
    }
    interop::run_on_input_file(*model, arg);
    if (arg.has("--save")) save_weights(*model, arg("--save"));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keras_weights_tool: %s\n", e.what());
    return 1;
  }
}
