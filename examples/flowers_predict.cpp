// Classifies the user's own photos with a model written by flowers_transfer.
// Any size: the short side is scaled to the model's input size and the centre
// cropped, as the flowers shards were made.
#include <algorithm>
#include <cstdio>
#include <iostream>
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
    "usage: flowers_predict --model FILE [--json] IMAGE...\n"
    "  The predicted flower class and its probability for each photo (JPEG or PNG, any size).\n"
    "  --model FILE  model.safetensors written by flowers_transfer\n"
    "  --json        print [{\"image\": path, \"class\": name, \"index\": i, \"prob\": p}, ...]\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

int run(const ex::CommandLine& cl) {
  if (!cl.values.count("--model")) cl.fail("--model is required");
  if (cl.positional.empty()) cl.fail("no image given");
  for (const auto& path : cl.positional) ex::require_regular_file(path, "image");
  ex::require_regular_file(cl.get("--model"), "--model");
  ex::TransferModel tm = ex::load_transfer_model(cl.get("--model"));
  tm.model->eval();
  ag::NoGradGuard no_grad;
  const bool json = cl.switches.count("--json") > 0;
  std::string out = "[";
  for (std::size_t i = 0; i < cl.positional.size(); ++i) {
    const std::string& path = cl.positional[i];
    const Tensor x = ex::images_to_batch({data::read_image(path)}, tm.input_size, tm.scale, /*short_side_crop=*/true);
    const std::vector<float> probs = (*tm.model)(ag::Variable(x)).data().contiguous().to_vector<float>();
    const auto best = static_cast<std::size_t>(std::max_element(probs.begin(), probs.end()) - probs.begin());
    if (json) {
      out += std::string(i ? ",\n " : "") + "{\"image\": " + nn::json::quote(path) +
             ", \"class\": " + nn::json::quote(tm.classes[best]) + ", \"index\": " + std::to_string(best) +
             ", \"prob\": " + nn::json::number(probs[best]) + "}";
    } else {
      std::printf("%s: %s %.4f\n", path.c_str(), tm.classes[best].c_str(), static_cast<double>(probs[best]));
    }
  }
  if (json) std::cout << out << "]\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_program("flowers_predict", [&] {
    return run(ex::parse_command_line(argc, argv, "flowers_predict", kUsage, {"--model"}, {"--json"},
                                      ex::Positional::Allowed));
  });
}
