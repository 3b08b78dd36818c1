// What --resume relies on: the newest complete checkpoint is found (damaged
// or foreign files passed over, temporaries never taken), checkpoints carry
// the history of every epoch across resumes, ModelCheckpoint keeps only the
// newest files it is asked to, and a run resumed through all that ends with
// the uninterrupted run's weights and history.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/atomic_file.hpp"
#include "core/random.hpp"
#include "nn/nn.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;

namespace {

struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("petal_checkpoints_" + std::to_string(::getpid()));
  ScratchDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::shared_ptr<Sequential> small_model() {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{6}), std::make_shared<Dense>(12, "relu"), std::make_shared<Dropout>(0.3),
      std::make_shared<Dense>(3, "softmax")});
}

std::pair<Tensor, Tensor> data() {
  Generator gen(17);
  Tensor x = normal({48, 6}, 0.0, 1.0, gen);
  std::vector<std::int64_t> y(48);
  for (auto& label : y) label = static_cast<std::int64_t>(gen.uniform_int(3));
  return {x, from_vector(y)};
}

// Trains to `epochs` (checkpointing into dir), resuming from dir's newest checkpoint when there is one.
std::pair<std::shared_ptr<Sequential>, History> train(const fs::path& dir, int epochs) {
  reset_layer_names();
  manual_seed(4);
  auto [x, y] = data();
  auto model = small_model();
  auto adam = std::make_shared<Adam>(0.01);
  Trainer trainer(model);
  trainer.compile(adam, Loss::sparse_categorical_crossentropy());
  TensorBatchSource source(x, y, 8, /*shuffle=*/true, /*seed=*/3);
  const fs::path pattern = dir / "ckpt_{epoch}.safetensors";
  auto checkpoint = std::make_shared<ModelCheckpoint>(
      pattern, ModelCheckpoint::Options{.save_weights_only = false, .max_to_keep = 2});
  auto logger = std::make_shared<HistoryLogger>(dir / "history.json");
  FitOptions fit;
  fit.epochs = epochs;
  fit.verbose = Verbosity::Quiet;
  fit.callbacks = {logger, checkpoint};
  History history;
  if (auto latest = latest_checkpoint(pattern)) {
    fit.initial_epoch = load_checkpoint(*latest, *model, *adam);
    history = checkpoint_history(*latest);
    checkpoint->set_initial_history(history);
    logger->set_initial_history(history);
  }
  history.extend(trainer.fit(source, fit));
  return {model, history};
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("History survives to_json/from_json and extends across a resume") {
  History a;
  a.append(0, {{"loss", 1.5}, {"accuracy", 0.25}}, 0.5);
  a.append(1, {{"loss", 1.25}, {"accuracy", 0.5}, {"val_loss", 2.0}}, 0.75);
  const History back = History::from_json(a.to_json(), "test");
  CHECK(back.epochs == std::vector<int>{0, 1});
  CHECK(back["loss"] == std::vector<double>{1.5, 1.25});
  CHECK(back.epoch_seconds == std::vector<double>{0.5, 0.75});
  CHECK(std::isnan(back["val_loss"][0]));  // logged late: null, read back as NaN
  CHECK(back["val_loss"][1] == 2.0);
  CHECK(back.values.count("val_accuracy") == 0);  // written as [], never logged

  History later;
  later.append(2, {{"loss", 1.0}, {"accuracy", 0.75}}, 0.25);
  later.train_samples = 10;
  later.train_seconds = 2;
  History all = back;
  all.extend(later);
  CHECK(all.epochs == std::vector<int>{0, 1, 2});
  CHECK(all["loss"] == std::vector<double>{1.5, 1.25, 1.0});
  CHECK(all["val_loss"].size() == 3);
  CHECK(all.train_samples == 10);

  CHECK_THROWS_AS(History::from_json("{\"loss\": [1]}", "test"), FormatError);
  CHECK_THROWS_AS(History::from_json("{\"loss\": [1, 2], \"epoch_seconds\": [1]}", "test"), FormatError);
  CHECK_THROWS_AS(History::from_json("[1]", "test"), FormatError);
}

TEST_CASE("latest_checkpoint takes the newest complete file and passes over damaged ones") {
  ScratchDir dir;
  const fs::path pattern = dir.path / "epoch_{epoch}.safetensors";
  CHECK_FALSE(latest_checkpoint(pattern).has_value());
  CHECK_FALSE(latest_checkpoint(dir.path / "missing" / "epoch_{epoch}.safetensors").has_value());

  reset_layer_names();
  auto model = small_model();
  SGD sgd(0.1);
  for (int epoch : {2, 9, 10}) save_checkpoint(dir.path / ("epoch_" + std::to_string(epoch) + ".safetensors"), *model, sgd, epoch);
  CHECK(*latest_checkpoint(pattern) == dir.path / "epoch_10.safetensors");

  // A file cut short (by a writer that is not atomic), a foreign file, a
  // temporary, a name with leading zeros and a file whose epoch disagrees with its name.
  fs::resize_file(dir.path / "epoch_10.safetensors", fs::file_size(dir.path / "epoch_10.safetensors") - 5);
  std::ofstream(dir.path / "epoch_12.safetensors") << "not safetensors";
  fs::copy_file(dir.path / "epoch_9.safetensors", dir.path / "epoch_13.safetensors.tmp.77");
  fs::copy_file(dir.path / "epoch_9.safetensors", dir.path / "epoch_014.safetensors");
  fs::copy_file(dir.path / "epoch_9.safetensors", dir.path / "epoch_11.safetensors");
  std::vector<std::string> passed_over;
  CHECK(*latest_checkpoint(pattern, &passed_over) == dir.path / "epoch_9.safetensors");
  REQUIRE(passed_over.size() == 3);
  CHECK(passed_over[0].find("epoch_12.safetensors") != std::string::npos);
  CHECK(passed_over[1].find("epoch_11.safetensors: holds epoch 9") != std::string::npos);
  CHECK(passed_over[2].find("epoch_10.safetensors") != std::string::npos);

  const auto files = checkpoint_files(pattern);
  REQUIRE(files.size() == 5);
  CHECK(files.front().first == 2);
  CHECK(files.back().first == 12);
  CHECK(checkpoint_history(dir.path / "epoch_9.safetensors").epochs.empty());  // saved without a history
}

TEST_CASE("a run resumed twice ends with the uninterrupted run's weights and whole history") {
  ScratchDir straight, interrupted;
  auto [reference, reference_history] = train(straight.path, 6);
  train(interrupted.path, 2);
  train(interrupted.path, 4);
  auto [resumed, history] = train(interrupted.path, 6);

  auto wa = reference->weights(), wb = resumed->weights();
  REQUIRE(wa.size() == wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) {
    INFO(wa[i].name);
    CHECK(wa[i].variable.data().to_vector<float>() == wb[i].variable.data().to_vector<float>());
  }
  CHECK(history.epochs == std::vector<int>{0, 1, 2, 3, 4, 5});
  CHECK(history["loss"] == reference_history["loss"]);
  CHECK(checkpoint_history(interrupted.path / "ckpt_6.safetensors")["loss"] == reference_history["loss"]);
  const History logged = History::from_json(
      [&] {
        std::ifstream in(interrupted.path / "history.json");
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      "history.json");
  CHECK(logged["loss"] == reference_history["loss"]);
  // max_to_keep = 2: only the newest two checkpoints stay.
  CHECK(names_in(interrupted.path) ==
        std::vector<std::string>{"ckpt_5.safetensors", "ckpt_6.safetensors", "history.json"});
}
