// Long run in small form: 2,000 training steps of a small dense model on
// random data, with the per-epoch outputs a real run writes (checkpoints,
// history), must not grow the process: peak RSS after step 2,000 within 5%
// of peak RSS after step 200 (a leak of a few KB per step would show).
// Registered for the release build only: sanitizers keep freed memory in
// quarantine, which is growth by design.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/random.hpp"
#include "nn/nn.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;

namespace {

// A field of /proc/self/status in kB ("VmHWM": peak resident set, "VmRSS": now).
long status_kb(const std::string& field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

class MemoryProbe : public Callback {
 public:
  void on_batch_end(Trainer&, int, std::int64_t, const Logs&) override {
    ++steps;
    if (steps == 200) peak_200 = status_kb("VmHWM"), rss_200 = status_kb("VmRSS");
    if (steps == 2000) peak_2000 = status_kb("VmHWM"), rss_2000 = status_kb("VmRSS");
  }
  std::int64_t steps = 0;
  long peak_200 = 0, rss_200 = 0, peak_2000 = 0, rss_2000 = 0;
};

}  // namespace

TEST_CASE("2,000 training steps keep peak RSS within 5% of its value at step 200") {
  REQUIRE(status_kb("VmHWM") > 0);
  const fs::path dir = fs::temp_directory_path() / ("petal_long_run_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(3);
  Generator gen(5);
  constexpr std::int64_t rows = 3200, inputs = 64, classes = 10, batch = 32;  // 100 steps per epoch
  const Tensor x = normal({rows, inputs}, 0.0, 1.0, gen);
  std::vector<std::int64_t> labels(rows);
  for (auto& label : labels) label = static_cast<std::int64_t>(gen.uniform_int(classes));
  const Tensor y = from_vector(labels);
  const Tensor val_x = normal({320, inputs}, 0.0, 1.0, gen);
  const Tensor val_y = from_vector(std::vector<std::int64_t>(labels.begin(), labels.begin() + 320));

  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{inputs}), std::make_shared<Dense>(256, "relu"), std::make_shared<Dropout>(0.1),
      std::make_shared<Dense>(256, "relu"), std::make_shared<Dense>(classes, "softmax")});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(1e-3), Loss::sparse_categorical_crossentropy(), {"accuracy"});
  TensorBatchSource train(x, y, batch, /*shuffle=*/true, /*seed=*/9);
  TensorBatchSource validation(val_x, val_y, batch);
  auto probe = std::make_shared<MemoryProbe>();
  FitOptions fit;
  fit.epochs = 20;
  fit.validation = &validation;
  fit.verbose = Verbosity::Quiet;
  fit.callbacks = {probe, std::make_shared<HistoryLogger>(dir / "history.csv"),
                   std::make_shared<ModelCheckpoint>(dir / "checkpoint_{epoch}.safetensors",
                                                     ModelCheckpoint::Options{.save_weights_only = false,
                                                                              .max_to_keep = 2})};
  const History history = trainer.fit(train, fit);
  fs::remove_all(dir);

  REQUIRE(probe->steps == 2000);
  CHECK(history.epochs.size() == 20);
  std::printf("peak RSS %ld kB at step 200, %ld kB at step 2000 (%+.2f%%); RSS %ld kB -> %ld kB\n", probe->peak_200,
              probe->peak_2000, 100.0 * (probe->peak_2000 - probe->peak_200) / probe->peak_200, probe->rss_200,
              probe->rss_2000);
  CHECK(probe->peak_2000 <= probe->peak_200 * 105 / 100);
}
