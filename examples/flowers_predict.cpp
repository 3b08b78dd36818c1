// Classifies the user's own photos with a model written by flowers_transfer.
// Any size: the short side is scaled to the model's input size and the centre
// cropped, as the flowers shards were made.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "core/error.hpp"
#include "data/image_io.hpp"
#include "examples/flowers_common.hpp"
#include "examples/transfer_model.hpp"
#include "nn/json.hpp"

using namespace petal;
namespace ex = petal::examples;

namespace {

const char* kUsage =
    "usage: flowers_predict --model FILE [--top K] [--device cpu|cuda] [--json] IMAGE...\n"
    "  The predicted flower class and its probability for each photo (JPEG or PNG, any size).\n"
    "  --model FILE  model.safetensors written by flowers_transfer\n"
    "  --top K       the K most probable classes of each photo, most probable first (1 to the model's\n"
    "                number of classes; default 1: the predicted class alone)\n"
    "  --device D    cpu (default), cuda or cuda:N: where the model runs\n"
    "  --json        print [{\"image\": path, \"class\": name, \"index\": i, \"prob\": p}, ...] (the\n"
    "                most probable class), with \"top\": [{\"class\", \"index\", \"prob\"}, ...] when --top is given\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

int run(const ex::CommandLine& cl) {
  if (!cl.values.count("--model")) cl.fail("--model is required");
  std::int64_t top = 1;
  try {
    top = cl.get_int("--top", 1, 1, std::numeric_limits<std::int32_t>::max());
  } catch (const ex::UsageError&) {
    cl.fail(str_cat("--top expects an integer from 1 to the model's number of classes, got \"", cl.get("--top"), "\""));
  }
  if (cl.positional.empty()) cl.fail("no image given");
  const Device device = ex::select_device(cl.get("--device", "cpu"));
  for (const auto& path : cl.positional) ex::require_regular_file(path, "image");
  ex::require_regular_file(cl.get("--model"), "--model");
  ex::TransferModel tm = ex::load_transfer_model(cl.get("--model"));
  const auto num_classes = static_cast<std::int64_t>(tm.classes.size());
  if (top > num_classes)
    cl.fail(str_cat("--top expects an integer from 1 to ", num_classes, " (the model's classes), got \"", top, "\""));
  tm.model->to(device);
  tm.model->eval();
  ag::NoGradGuard no_grad;
  const bool json = cl.switches.count("--json") > 0;
  std::string out = "[";
  for (std::size_t i = 0; i < cl.positional.size(); ++i) {
    const std::string& path = cl.positional[i];
    const Tensor x = ex::images_to_batch({data::read_image(path)}, tm.input_size, tm.scale, /*short_side_crop=*/true);
    const std::vector<float> probs =
        (*tm.model)(ag::Variable(x.to(device))).data().to(Device::cpu()).contiguous().to_vector<float>();
    // Class indices by falling probability (ties: the lower index first).
    std::vector<std::size_t> order(probs.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return probs[a] > probs[b]; });
    order.resize(static_cast<std::size_t>(top));
    const std::size_t best = order[0];
    if (json) {
      out += std::string(i ? ",\n " : "") + "{\"image\": " + nn::json::quote(path) +
             ", \"class\": " + nn::json::quote(tm.classes[best]) + ", \"index\": " + std::to_string(best) +
             ", \"prob\": " + nn::json::number(probs[best]);
      if (cl.values.count("--top")) {
        out += ", \"top\": [";
        for (std::size_t k = 0; k < order.size(); ++k)
          out += std::string(k ? ", " : "") + "{\"class\": " + nn::json::quote(tm.classes[order[k]]) +
                 ", \"index\": " + std::to_string(order[k]) + ", \"prob\": " + nn::json::number(probs[order[k]]) + "}";
        out += "]";
      }
      out += "}";
    } else if (top == 1) {
      std::printf("%s: %s %.4f\n", path.c_str(), tm.classes[best].c_str(), static_cast<double>(probs[best]));
    } else {
      std::printf("%s:\n", path.c_str());
      for (std::size_t k = 0; k < order.size(); ++k)
        std::printf("  %zu. %s %.4f\n", k + 1, tm.classes[order[k]].c_str(), static_cast<double>(probs[order[k]]));
    }
  }
  if (json) std::cout << out << "]\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_program("flowers_predict", [&] {
    return run(ex::parse_command_line(argc, argv, "flowers_predict", kUsage, {"--model", "--top", "--device"}, {"--json"},
                                      ex::Positional::Allowed));
  });
}
