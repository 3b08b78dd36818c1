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
    std::map<std::string, std::string> args;
    for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
    auto arg = [&](const std::string& key, const std::string& fallback = "") {
      auto it = args.find(key);
      if (it != args.end()) return it->second;
      PETAL_CHECK(!fallback.empty(), ValueError, "missing ", key);
      return fallback;
    };
    const std::int64_t size = std::stoll(arg("--size"));
    const std::int64_t batch = std::stoll(arg("--batch"));
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
    model->build({size, size, 3});
    model->eval();
    if (args.count("--weights")) load_weights(*model, args["--weights"]);
    else interop::randomize_like_trained(*model, std::stoull(arg("--random")));
    const std::vector<float> input = interop::read_floats(arg("--input"), static_cast<std::size_t>(batch * size * size * 3));
    Tensor x = Tensor::empty({batch, size, size, 3});
    std::copy(input.begin(), input.end(), x.data<float>());
    const Tensor y = (*model)(ag::Variable(x)).data().contiguous();
    std::ofstream out(arg("--output"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(y.data<float>()), static_cast<std::streamsize>(y.numel() * sizeof(float)));
    if (args.count("--save")) save_weights(*model, args["--save"]);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keras_weights_tool: %s\n", e.what());
    return 1;
  }
}
