// Classifies photos (JPEG or PNG) with MobileNetV2 and its ImageNet weights:
// each image is resized whole to N x N (bilinear), scaled to [-1, 1], and the
// top-5 classes are printed with their probabilities.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "core/assets.hpp"
#include "core/error.hpp"
#include "data/image_io.hpp"
#include "examples/flowers_common.hpp"
#include "nn/constant_weights.hpp"
#include "nn/json.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/onnx_export.hpp"

using namespace petal;
namespace ex = petal::examples;

namespace {

const char* kUsage =
    "usage: imagenet_classify [--weights FILE] [--size N] [--json] [--device cpu|cuda] IMAGE...\n"
    "       imagenet_classify [--weights FILE] [--size N] --export-onnx FILE [IMAGE...]\n"
    "  Classifies each image (JPEG or PNG) with MobileNetV2 1.0 and its ImageNet weights.\n"
    "  The image is resized whole to N x N (bilinear) and scaled to [-1, 1].\n"
    "  --weights FILE  safetensors, Keras .h5 or .weights.h5, told apart by content (default:\n"
    "                  mobilenet_v2_1.0_imagenet.safetensors in the assets search path, else the official\n"
    "                  mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5; imagenet_labels.txt\n"
    "                  is taken from its folder)\n"
    "  --size N        input size (default 224, from 32 to 4096)\n"
    "  --json          print [{\"image\": path, \"top5\": [{\"index\", \"label\", \"prob\"}, ...]}, ...]\n"
    "  --device D      cpu (default), cuda or cuda:N: where the model runs\n"
    "  --export-onnx FILE  also write the loaded model as ONNX (opset 17; input: the [N, size, size, 3]\n"
    "                  float32 batch scaled to [-1, 1]; output: the 1000 probabilities); without images,\n"
    "                  only that\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

// A MobileNetV2 input of 4096 x 4096 already needs about 40 GB of activations.
constexpr std::int64_t kMaxSize = 4096;

std::vector<std::string> read_labels(const std::filesystem::path& path) {
  ex::require_regular_file(path, "labels file");
  std::ifstream in(path);
  PETAL_CHECK(in.good(), IOError, "cannot read the labels ", path.string());
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  PETAL_CHECK(labels.size() == 1000, FormatError, path.string(), " has ", labels.size(),
              " lines, expected 1000");
  return labels;
}

int run(const ex::CommandLine& cl) {
  const std::string onnx_path = cl.get("--export-onnx");
  if (cl.positional.empty() && onnx_path.empty()) cl.fail("no image given (or --export-onnx FILE)");
  const std::int64_t size = cl.get_int("--size", 224, 32, kMaxSize);
  const bool json = cl.switches.count("--json") > 0;
  const Device device = ex::select_device(cl.get("--device", "cpu"));
  for (const auto& path : cl.positional) ex::require_regular_file(path, "image");
  const auto weights = find_first_asset({"mobilenet_v2_1.0_imagenet.safetensors", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"}, cl.get("--weights"));
  ex::require_regular_file(weights, "--weights");
  // Exporting alone needs no labels.
  const auto labels = cl.positional.empty() ? std::vector<std::string>{}
                                            : read_labels(weights.parent_path() / "imagenet_labels.txt");

  nn::MobileNetV2 model(Shape{size, size, 3}, 1.0, /*include_top=*/true);
  model.load_weights(weights);
  if (!onnx_path.empty()) {
    onnx::export_model(model, onnx_path);
    if (cl.positional.empty()) return 0;
  }
  model.to(device);
  ag::NoGradGuard no_grad;
  // Several photos: the weights are packed for the GEMMs once, not per photo
  // (one photo would pay the packing for nothing).
  std::optional<nn::ConstantWeights> constant;
  if (cl.positional.size() > 1) constant.emplace(model);

  std::string out = "[";
  for (std::size_t i = 0; i < cl.positional.size(); ++i) {
    const std::string& path = cl.positional[i];
    const Tensor batch = ex::images_to_batch({data::read_image(path)}, static_cast<int>(size),
                                             data::PixelScale::MinusOneOne, /*short_side_crop=*/false);
    const std::vector<float> probs = model(ag::Variable(batch.to(device))).data().contiguous().to_vector<float>();
    std::vector<int> order(probs.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
    if (json) {
      out += std::string(i ? ",\n " : "") + "{\"image\": " + nn::json::quote(path) + ", \"top5\": [";
      for (int k = 0; k < 5; ++k)
        out += std::string(k ? ", " : "") + "{\"index\": " + std::to_string(order[k]) +
               ", \"label\": " + nn::json::quote(labels[order[k]]) + ", \"prob\": " + nn::json::number(probs[order[k]]) +
               "}";
      out += "]}";
    } else {
      std::printf("%s\n", path.c_str());
      for (int k = 0; k < 5; ++k)
        std::printf("  %4d  %-30s %.4f\n", order[k], labels[order[k]].c_str(), static_cast<double>(probs[order[k]]));
    }
  }
  if (json) std::cout << out << "]\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_program("imagenet_classify", [&] {
    return run(ex::parse_command_line(argc, argv, "imagenet_classify", kUsage,
                                      {"--weights", "--size", "--device", "--export-onnx"}, {"--json"},
                                      ex::Positional::Allowed));
  });
}
