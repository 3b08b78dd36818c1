// docs/guide.md, "Saving, loading and resuming": weights keyed by structural
// paths (two instances in one process read each other's files), and
// checkpoints that resume fit() exactly where it stopped.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <petal.hpp>

#include "toy_data.hpp"

using namespace petal;

// [guide:save_load_make]
std::shared_ptr<nn::Model> make_model() {
  auto inputs = nn::Input({16});
  auto h = nn::layer<nn::Dense>(32, "relu")(inputs);
  h = nn::layer<nn::BatchNormalization>()(h);
  auto outputs = nn::layer<nn::Dense>(3, "softmax")(h);
  return std::make_shared<nn::Model>(inputs, outputs, "classifier");
}

void compile(nn::Trainer& trainer) {
  trainer.compile(std::make_shared<nn::Adam>(1e-2), nn::Loss::sparse_categorical_crossentropy());
}
// [/guide:save_load_make]

int main() {
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("petal_guide_save_load_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto [x, y] = guide::toy_points(512, 16, 3, /*seed=*/1, /*noise=*/1.0);
  auto same_weights = [](const nn::Module& a, const nn::Module& b) {
    const auto wa = a.weights(), wb = b.weights();
    if (wa.size() != wb.size()) return false;
    for (std::size_t i = 0; i < wa.size(); ++i)
      if (wa[i].path != wb[i].path ||
          wa[i].variable.data().to_vector<float>() != wb[i].variable.data().to_vector<float>())
        return false;
    return true;
  };

  {
    // [guide:save_load_weights]
    auto trained = make_model();
    nn::Trainer trainer(trained);
    compile(trainer);
    nn::TensorBatchSource train(x, y, 32, /*shuffle=*/true, /*seed=*/0);
    trainer.fit(train, {.epochs = 2, .verbose = nn::Verbosity::Quiet});
    nn::save_weights(*trained, dir / "classifier.safetensors");

    // A second instance in the same process: its layers got other automatic
    // names (dense_2, dense_3, ...), but the file is keyed by structural paths.
    auto copy = make_model();
    nn::load_weights(*copy, dir / "classifier.safetensors");
    for (const nn::WeightRef& w : copy->weights()) std::cout << w.path << "  (" << w.name << ")\n";
    // [/guide:save_load_weights]
    check(same_weights(*trained, *copy), "the copy has the trained weights");
    ag::Variable input(x.slice(0, 0, 8));
    check((*trained)(input).data().to_vector<float>() == (*copy)(input).data().to_vector<float>(),
          "the copy predicts what the original does");
    check(copy->weights().front().name != copy->weights().front().path, "display names differ from paths");
  }

  // An uninterrupted run of 4 epochs, to compare with the resumed one.
  manual_seed(7);
  auto uninterrupted = make_model();
  {
    nn::Trainer trainer(uninterrupted);
    compile(trainer);
    nn::TensorBatchSource train(x, y, 32, /*shuffle=*/true, /*seed=*/0);
    trainer.fit(train, {.epochs = 4, .verbose = nn::Verbosity::Quiet});
  }

  manual_seed(7);  // the same initial weights
  {
    // [guide:save_load_checkpoint]
    // Two epochs, then a checkpoint: weights, optimizer slots and step count,
    // epochs done, and the random generator's state.
    auto model = make_model();
    nn::Trainer trainer(model);
    compile(trainer);
    nn::TensorBatchSource train(x, y, 32, /*shuffle=*/true, /*seed=*/0);
    trainer.fit(train, {.epochs = 2, .verbose = nn::Verbosity::Quiet});
    nn::save_checkpoint(dir / "checkpoint.safetensors", *model, trainer.optimizer(), /*epochs_completed=*/2);
    // [/guide:save_load_checkpoint]
  }
  std::shared_ptr<nn::Model> resumed_model;
  {
    // [guide:save_load_resume]
    // Later, maybe in another process: a fresh model and trainer, compiled the
    // same way, continue at epoch 3 of 4.
    auto model = make_model();
    nn::Trainer trainer(model);
    compile(trainer);
    int done = nn::load_checkpoint(dir / "checkpoint.safetensors", *model, trainer.optimizer());
    nn::TensorBatchSource train(x, y, 32, /*shuffle=*/true, /*seed=*/0);
    nn::History history = trainer.fit(train, {.epochs = 4, .initial_epoch = done});
    // [/guide:save_load_resume]
    resumed_model = model;
    check(done == 2, "two epochs done");
    check(history.epochs == std::vector<int>({2, 3}), "fit ran epochs 3 and 4");
  }
  check(same_weights(*uninterrupted, *resumed_model), "the resumed run ends with the uninterrupted run's weights");

  {
    // [guide:save_load_callback]
    // The same with a callback: a full checkpoint after every epoch, the two
    // newest kept; latest_checkpoint finds the newest complete one.
    const std::string pattern = (dir / "ckpt_{epoch}.safetensors").string();
    auto model = make_model();
    nn::Trainer trainer(model);
    compile(trainer);
    auto checkpoints = std::make_shared<nn::ModelCheckpoint>(
        pattern, nn::ModelCheckpoint::Options{.save_weights_only = false, .max_to_keep = 2});
    nn::TensorBatchSource train(x, y, 32, /*shuffle=*/true, /*seed=*/0);
    trainer.fit(train, {.epochs = 3, .callbacks = {checkpoints}, .verbose = nn::Verbosity::Quiet});

    std::optional<std::filesystem::path> latest = nn::latest_checkpoint(pattern);  // .../ckpt_3.safetensors
    // [/guide:save_load_callback]
    check(latest && latest->filename() == "ckpt_3.safetensors", "latest checkpoint is epoch 3");
    check(nn::checkpoint_files(pattern).size() == 2, "two checkpoints kept");
  }
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
