// Evaluates a model written by flowers_transfer on TFRecord shards: rebuilds
// the model from the file's metadata, expands the glob itself, and prints the
// accuracy and the confusion matrix (rows: true class, columns: predicted).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "core/error.hpp"
#include "data/file_list.hpp"
#include "examples/flowers_common.hpp"
#include "examples/transfer_model.hpp"
#include "nn/json.hpp"
#include "nn/metrics.hpp"

using namespace petal;
namespace ex = petal::examples;

namespace {

const char* kUsage =
    "usage: flowers_evaluate --model FILE --files GLOB [--batch N] [--json] [--device cpu|cuda]\n"
    "  Accuracy and confusion matrix of a flowers_transfer model on TFRecord shards.\n"
    "  --model FILE  model.safetensors written by flowers_transfer (architecture in its metadata)\n"
    "  --files GLOB  shards to evaluate, e.g. 'flowers-192/flowers0[0-2]*.tfrec' (quote it)\n"
    "  --batch N     images per forward pass (default 64)\n"
    "  --json        print {\"accuracy\", \"n\", \"classes\", \"confusion_matrix\"}\n"
    "  --device D    cpu (default), cuda or cuda:N: where the model runs\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

int run(const ex::CommandLine& cl) {
  if (!cl.values.count("--model") || !cl.values.count("--files")) cl.fail("--model and --files are required");
  const std::int64_t batch = cl.get_int("--batch", 64, 1, ex::kMaxBatch);
  const Device device = ex::select_device(cl.get("--device", "cpu"));
  // Every input checked before the model loads: a FIFO or a folder fails at once.
  const auto files = data::glob_files(cl.get("--files"));
  for (const auto& file : files) ex::require_regular_file(file, "shard");
  ex::require_regular_file(cl.get("--model"), "--model");
  ex::TransferModel tm = ex::load_transfer_model(cl.get("--model"));
  tm.model->to(device);
  const auto num_classes = static_cast<std::int64_t>(tm.classes.size());
  const ex::LabeledImages images = ex::read_labeled_shards(files, tm.input_size, num_classes);

  tm.model->eval();
  ag::NoGradGuard no_grad;
  ex::ImageRowsSource source(images, ex::one_hot(images.classes, num_classes), batch, false, 0, false, tm.scale, false);
  source.begin_epoch(0);
  std::vector<std::int64_t> predicted;
  while (auto batch = source.next()) {
    const Tensor output = (*tm.model)(ag::Variable(batch->x.to(device))).data();
    const auto rows = nn::predicted_classes(output.to(Device::cpu()));
    predicted.insert(predicted.end(), rows.begin(), rows.end());
  }
  const auto confusion = nn::confusion_matrix(images.classes, predicted, num_classes);
  std::int64_t correct = 0;
  for (std::int64_t c = 0; c < num_classes; ++c) correct += confusion[c][c];
  const std::int64_t n = images.size();
  const double accuracy = static_cast<double>(correct) / static_cast<double>(n);

  if (cl.switches.count("--json")) {
    std::cout << "{\"accuracy\": " << nn::json::number(accuracy) << ", \"n\": " << n
              << ", \"classes\": " << ex::string_list_json(tm.classes)
              << ", \"confusion_matrix\": " << ex::matrix_json(confusion) << "}\n";
    return 0;
  }
  std::printf("accuracy %.4f (%lld of %lld images, %zu file(s))\n", accuracy, static_cast<long long>(correct),
              static_cast<long long>(n), files.size());
  std::printf("confusion matrix (rows: true class, columns: predicted)\n%12s", "");
  for (const auto& c : tm.classes) std::printf(" %10.10s", c.c_str());
  std::printf("\n");
  for (std::int64_t r = 0; r < num_classes; ++r) {
    std::printf("%12.12s", tm.classes[r].c_str());
    for (std::int64_t c = 0; c < num_classes; ++c) std::printf(" %10lld", static_cast<long long>(confusion[r][c]));
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_program("flowers_evaluate", [&] {
    return run(ex::parse_command_line(argc, argv, "flowers_evaluate", kUsage, {"--model", "--files", "--device", "--batch"},
                                      {"--json"}, ex::Positional::None));
  });
}
