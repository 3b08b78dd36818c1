// The program tests/reliability/crash_test.py kills at random moments. It
// trains a small dense model on random data the way the flowers examples do
// with --checkpoint/--resume (a full checkpoint each epoch, history files each
// epoch, results, curves, weights and a PNG at the end), and checks a folder
// of its outputs:
//
//   crash_trainer train DIR EPOCHS     trains, resuming from DIR's newest complete checkpoint
//   crash_trainer verify DIR           every file in DIR loads completely (exit 1 naming the first that does not)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "data/png.hpp"
#include "nn/json.hpp"
#include "nn/nn.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;

namespace {

constexpr std::int64_t kInputs = 48, kClasses = 10, kRows = 384, kBatch = 32;
const char* kCheckpointPattern = "checkpoint_{epoch}.safetensors";

std::shared_ptr<Sequential> make_model() {
  reset_layer_names();  // the same weight names for every model this process builds
  // Dropout draws from default_generator(): a resume that lost the RNG state would differ.
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{kInputs}), std::make_shared<Dense>(160, "relu"), std::make_shared<Dropout>(0.2),
      std::make_shared<Dense>(96, "relu"), std::make_shared<Dense>(kClasses, "softmax")});
}

// Random inputs labelled by a random linear teacher (its own generator, so the
// data never depends on what the model drew).
std::pair<Tensor, Tensor> random_data() {
  Generator gen(1234);
  Tensor x = normal({kRows, kInputs}, 0.0, 1.0, gen);
  Tensor teacher = normal({kInputs, kClasses}, 0.0, 1.0, gen);
  const auto xs = x.to_vector<float>(), ws = teacher.to_vector<float>();
  std::vector<std::int64_t> labels;
  for (std::int64_t r = 0; r < kRows; ++r) {
    std::int64_t best = 0;
    double best_score = -1e300;
    for (std::int64_t c = 0; c < kClasses; ++c) {
      double s = 0;
      for (std::int64_t i = 0; i < kInputs; ++i) s += xs[r * kInputs + i] * ws[i * kClasses + c];
      if (s > best_score) best_score = s, best = c;
    }
    labels.push_back(best);
  }
  return {x, from_vector(labels)};
}

int train(const fs::path& dir, int epochs) {
  fs::create_directories(dir);
  manual_seed(7);
  auto [x, y] = random_data();
  auto model = make_model();
  auto adam = std::make_shared<Adam>(3e-3);
  Trainer trainer(model);
  trainer.compile(adam, Loss::sparse_categorical_crossentropy(), {"accuracy"});
  TensorBatchSource data(x, y, kBatch, /*shuffle=*/true, /*seed=*/11);

  auto history_json = std::make_shared<HistoryLogger>(dir / "history.json");
  auto history_csv = std::make_shared<HistoryLogger>(dir / "history.csv");
  auto checkpoint = std::make_shared<ModelCheckpoint>(
      dir / kCheckpointPattern, ModelCheckpoint::Options{.save_weights_only = false, .max_to_keep = 2});
  FitOptions fit;
  fit.epochs = epochs;
  fit.verbose = Verbosity::Quiet;
  // History first: a checkpoint of epoch E then implies history files of epoch E.
  fit.callbacks = {history_json, history_csv, checkpoint};
  History history;
  if (auto latest = latest_checkpoint(dir / kCheckpointPattern)) {
    fit.initial_epoch = load_checkpoint(*latest, *model, *adam);
    history = checkpoint_history(*latest);
    for (auto* logger : {history_json.get(), history_csv.get()}) logger->set_initial_history(history);
    checkpoint->set_initial_history(history);
  }
  history.extend(trainer.fit(data, fit));

  write_text_file_atomic(dir / "results.json",
                         "{\"epochs\": " + std::to_string(history.epochs.size()) +
                             ", \"history\": " + history.to_json() + "}\n");
  write_training_curves(history, dir / "curves.svg", "crash_trainer");
  save_weights(*model, dir / "model.safetensors", {{"epochs", std::to_string(epochs)}});
  // The first layer's kernel as a grey image: a PNG that changes with the weights.
  const auto kernel = model->weights()[0].variable.data().to_vector<float>();
  std::vector<std::uint8_t> pixels(kernel.size());
  for (std::size_t i = 0; i < kernel.size(); ++i)
    pixels[i] = static_cast<std::uint8_t>(std::clamp(128.0f + 400.0f * kernel[i], 0.0f, 255.0f));
  data::write_png(dir / "kernel.png", 160, kInputs, 1, pixels.data());
  return 0;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Throws naming what is incomplete.
void verify_file(const fs::path& path) {
  const std::string name = path.filename().string();
  if (path.extension() == ".safetensors") {
    SafetensorsReader reader(path);
    for (const auto& e : reader.entries()) reader.read(e);
    if (reader.metadata().count("petal_checkpoint")) {
      auto model = make_model();
      Adam adam(3e-3);
      if (!model->built()) model->build(Shape{kInputs});
      load_checkpoint(path, *model, adam);
      checkpoint_history(path);
    } else {
      auto model = make_model();
      if (!model->built()) model->build(Shape{kInputs});
      load_weights(*model, path);
    }
  } else if (path.extension() == ".json") {
    json::parse(read_file(path), name);
  } else if (path.extension() == ".csv") {
    const std::string text = read_file(path);
    PETAL_CHECK(text.rfind("epoch,", 0) == 0 && ends_with(text, "\n"), FormatError, name, ": cut short");
    std::istringstream lines(text);
    std::size_t fields = 0;
    for (std::string line; std::getline(lines, line);) {
      const std::size_t n = static_cast<std::size_t>(std::count(line.begin(), line.end(), ',')) + 1;
      PETAL_CHECK(fields == 0 || n == fields, FormatError, name, ": a row of ", n, " fields under a header of ", fields);
      fields = n;
    }
  } else if (path.extension() == ".svg") {
    const std::string text = read_file(path);
    PETAL_CHECK(text.find("<svg") != std::string::npos && ends_with(text, "</svg>\n"), FormatError, name, ": cut short");
  } else if (path.extension() == ".png") {
    const data::Image image = data::decode_png(read_file(path), {.channels = 0}, name);
    PETAL_CHECK(image.width == 160 && image.height == kInputs, FormatError, name, ": wrong size");
  } else {
    throw FormatError(str_cat(name, ": unexpected file"));
  }
}

int verify(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) continue;  // the test counts those
    try {
      verify_file(entry.path());
    } catch (const Error& e) {
      std::cerr << "crash_trainer verify: " << entry.path().string() << ": " << e.what() << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 3 && args[0] == "train") return train(args[1], std::stoi(args[2]));
    if (args.size() == 2 && args[0] == "verify") return verify(args[1]);
    std::cerr << "usage: crash_trainer train DIR EPOCHS | crash_trainer verify DIR\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "crash_trainer: " << e.what() << "\n";
    return 1;
  }
}
