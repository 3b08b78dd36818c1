// The petal side of tests/interop/tensorboard_interop.py: a short fit() of a
// small classifier with nn::TensorBoard (batch figures every 2 steps), then
// the History as JSON and the two event files' paths.
//
//   tensorboard_tool LOG_DIR   (writes LOG_DIR/history.json)
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tensorboard_tool LOG_DIR\n");
    return 2;
  }
  try {
    const std::filesystem::path log_dir = argv[1];
    manual_seed(11);
    std::vector<float> xs, ys;
    for (int i = 0; i < 48; ++i) {
      xs.push_back(static_cast<float>(std::sin(0.7 * i)));
      xs.push_back(static_cast<float>(std::cos(1.3 * i)));
      const int c = i % 3;
      for (int k = 0; k < 3; ++k) ys.push_back(k == c ? 1.0f : 0.0f);
    }
    Tensor x = from_vector(xs, {48, 2}), y = from_vector(ys, {48, 3});
    auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        std::make_shared<InputLayer>(Shape{2}), std::make_shared<Dense>(8, "relu"),
        std::make_shared<Dense>(3, "softmax")});
    Trainer trainer(model);
    trainer.compile(std::make_shared<Adam>(0.02), Loss::categorical_crossentropy(), {"accuracy", "auc"});
    TensorBatchSource train(x, y, 12, true, 4), val(x, y, 16);
    auto tb = std::make_shared<TensorBoard>(log_dir, TensorBoard::Options{.update_freq = 2});
    FitOptions o;
    o.epochs = 3;
    o.verbose = Verbosity::Quiet;
    o.validation = &val;
    o.callbacks = {tb};
    const History h = trainer.fit(train, o);
    write_text_file_atomic(log_dir / "history.json",
                           "{\"history\": " + h.to_json({"loss", "accuracy", "auc", "lr", "val_loss", "val_accuracy", "val_auc"}) +
                               ", \"train\": \"" + tb->train_file().string() + "\", \"validation\": \"" +
                               tb->validation_file().string() + "\", \"steps\": " +
                               std::to_string(trainer.optimizer().iterations()) + "}\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tensorboard_tool: %s\n", e.what());
    return 1;
  }
}
