// The lab's first model: a dense classifier on the raw flower pixels.
//
//   Sequential([Flatten(input_shape=[192,192,3]), Dense(500, relu), Dense(50, relu), Dense(5, softmax)])
//   compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
//
// Trains on the 13 training shards, validates on all 690 images of the first
// 3 shards (pixels scaled to [0, 1] like the lab), prints Keras-like
// progress, and writes results.json, curves.svg and model.safetensors into --out.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "core/assets.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "data/flowers.hpp"
#include "examples/checkpointing.hpp"
#include "examples/distributed_run.hpp"
#include "examples/flowers_common.hpp"
#include "core/atomic_file.hpp"
#include "nn/dataset_source.hpp"
#include "nn/nn.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;

namespace {

struct Options {
  std::string data;
  int epochs = 10;
  std::int64_t batch = 64;
  double lr = 1e-3;
  std::uint64_t seed = 42;
  std::string out = "out/flowers_dense";
  std::string device = "cpu";
  std::string checkpoint;  // empty: no checkpoints
  std::optional<std::string> tensorboard;  // --tensorboard DIR (an empty DIR is a usage error)
  bool resume = false;
  bool distributed = false;
};

const char* kUsage =
    "usage: flowers_dense [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N] [--out DIR]\n"
    "                     [--device cpu|cuda] [--checkpoint DIR [--resume]] [--tensorboard DIR] [--distributed]\n"
    "  Trains the lab's dense classifier (Flatten -> Dense 500 relu -> Dense 50 relu -> Dense 5 softmax,\n"
    "  Adam, categorical cross-entropy) on the flowers TFRecords.\n"
    "  --data DIR    folder of the *.tfrec shards (default: flowers-192 in the assets search path)\n"
    "  --epochs N    training epochs (default 10)\n"
    "  --batch N     batch size (default 64)\n"
    "  --lr X        Adam learning rate (default 0.001)\n"
    "  --seed N      seed for initialisation and shuffling (default 42)\n"
    "  --out DIR     output folder, created if missing (default out/flowers_dense)\n"
    "  --device D    cpu (default), cuda or cuda:N: where the model trains\n"
    "  --checkpoint DIR  a full checkpoint (weights, optimizer, epoch, RNG state, history) after every\n"
    "                epoch as DIR/epoch_N.safetensors (the newest two are kept)\n"
    "  --resume      continue from the newest complete checkpoint in DIR (needs --checkpoint); the run\n"
    "                ends with the weights an uninterrupted run with the same options reaches\n"
    "  --tensorboard DIR  TensorBoard event files of every epoch in DIR/train and DIR/validation\n"
    "                (view with: tensorboard --logdir DIR)\n"
    "  --distributed data-parallel over the MPI launcher's processes (mpirun -np N flowers_dense\n"
    "                --distributed ...): --batch is the global batch, split across the ranks; rank 0\n"
    "                prints progress and writes every output (docs/distributed.md)\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

Options parse_args(int argc, char** argv) {
  const examples::CommandLine cl = examples::parse_command_line(
      argc, argv, "flowers_dense", kUsage,
      {"--data", "--epochs", "--batch", "--lr", "--seed", "--out", "--device", "--checkpoint", "--tensorboard"},
      {"--resume", "--distributed"},
      examples::Positional::None);
  Options o;
  o.data = cl.get("--data");
  o.epochs = static_cast<int>(cl.get_int("--epochs", o.epochs, 1, examples::kMaxEpochs));
  o.batch = cl.get_int("--batch", o.batch, 1, examples::kMaxBatch);
  o.lr = cl.get_positive_double("--lr", o.lr, examples::kMaxLearningRate);
  o.seed = static_cast<std::uint64_t>(cl.get_int("--seed", 42, 0, examples::kMaxSeed));
  o.out = cl.get("--out", o.out);
  o.device = cl.get("--device", o.device);
  o.checkpoint = cl.get("--checkpoint");
  o.resume = cl.switches.count("--resume") > 0;
  o.distributed = cl.switches.count("--distributed") > 0;
  if (cl.values.count("--tensorboard")) o.tensorboard = cl.get("--tensorboard");
  if (o.resume && o.checkpoint.empty()) cl.fail("--resume needs --checkpoint DIR");
  return o;
}

int run(const Options& o) {
  const examples::DistributedRun ranks = examples::start_distributed(o.distributed);
  const Device device = examples::select_device(o.device);
  const fs::path data_dir = find_asset("flowers-192", o.data);
  // Rank 0 writes every output; the other ranks only train.
  std::optional<examples::OutputFolder> out, logs;
  if (ranks.chief()) out.emplace(o.out, "--out");
  if (o.tensorboard && ranks.chief()) logs.emplace(*o.tensorboard, "--tensorboard");
  const examples::CheckpointOptions checkpoints{o.checkpoint, "epoch", o.resume, ranks.chief()};
  examples::prepare_checkpoint_dir(checkpoints);
  manual_seed(o.seed);

  data::FlowersOptions fo;
  fo.batch_size = o.batch;
  fo.seed = o.seed;
  fo.scale = data::PixelScale::ZeroOne;  // the lab feeds x / 255
  fo.one_hot = true;                      // categorical cross-entropy
  data::FlowersDatasets flowers = data::make_flowers_datasets(data_dir, fo);
  PETAL_CHECK(flowers.training_steps > 0, ValueError, "flowers folder '", data_dir.string(), "' has ",
              flowers.training.num_records(), " training images, fewer than one batch (--batch ", o.batch, ")");
  flowers.training.deterministic(true);  // the same seed gives the same run
  // An epoch is one pass (its 2980 // 64 = 46 batches, shuffled as pass e),
  // not the next 46 batches of an endless stream, so --resume at epoch e
  // replays exactly the batches of an uninterrupted run.
  flowers.training.repeat(1);
  DatasetSource train(flowers.training, flowers.training_steps);
  DatasetSource validation(flowers.validation);  // one whole pass: all 690 images
  // Data-parallel: every rank reads the global batches and trains on its rows.
  distributed::ShardedBatchSource train_share(train, ranks.rank(), ranks.size());
  distributed::ShardedBatchSource validation_share(validation, ranks.rank(), ranks.size());

  const int size = data::kFlowerImageSize;
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Flatten>(Shape{size, size, 3}), std::make_shared<Dense>(500, "relu"),
      std::make_shared<Dense>(50, "relu"), std::make_shared<Dense>(5, "softmax")});
  model->to(device);
  if (ranks.chief()) {
    std::cout << model->summary();
    std::cout << "data: " << data_dir.string() << " (" << flowers.training_steps << " training steps of " << o.batch
              << " per epoch, " << flowers.validation.num_records() << " validation images)\n";
    if (ranks.size() > 1)
      std::cout << "data-parallel over " << ranks.size() << " ranks (" << ranks.group->backend() << "): "
                << o.batch / ranks.size() << " to " << (o.batch + ranks.size() - 1) / ranks.size()
                << " images per rank and step\n";
  }

  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(o.lr), Loss::categorical_crossentropy(), {"accuracy"});
  if (ranks.group) distributed::distribute(trainer, ranks.group);
  FitOptions fit;
  fit.epochs = o.epochs;
  fit.steps_per_epoch = flowers.training_steps;
  fit.validation = &validation_share;
  if (!ranks.chief()) fit.verbose = Verbosity::Quiet;
  if (logs) fit.callbacks.push_back(std::make_shared<TensorBoard>(logs->path()));
  History history = examples::fit_with_checkpoints(trainer, train_share, fit, checkpoints,
                                                   examples::find_resume_point(checkpoints));
  if (history.epochs.empty())
    throw Error(str_cat("training stopped before the first epoch ended: ", history.stop_reason));

  if (!ranks.chief()) return 0;  // rank 0 reports and writes
  std::vector<std::string> classes(data::kFlowerClasses.begin(), data::kFlowerClasses.end());
  Trainer::Predictions p = trainer.predict_with_targets(validation);
  const auto confusion = confusion_matrix(target_classes(p.targets), predicted_classes(p.outputs),
                                          static_cast<std::int64_t>(classes.size()));
  const double val_accuracy = history["val_accuracy"].back();

  const std::string results = examples::flowers_results_json(val_accuracy, history, history.samples_per_second(),
                                                            classes, confusion,
                                                            {.epochs = o.epochs,
                                                             .batch = o.batch,
                                                             .learning_rate = o.lr,
                                                             .optimizer = "adam",
                                                             .head = "",
                                                             .seed = o.seed,
                                                             .device = device.str()});
  write_text_file_atomic(out->file("results.json"), results);
  write_training_curves(history, out->file("curves.svg"), "flowers_dense");
  save_weights(*model, out->file("model.safetensors"),
               {{"architecture", "dense"},
                {"layers", "Flatten,Dense(500,relu),Dense(50,relu),Dense(5,softmax)"},
                {"input_size", std::to_string(size)},
                {"classes", examples::join(classes, ",")},
                {"preprocessing", "x/255"}});

  std::printf("val_accuracy %.4f (%lld images), %.1f training images/s; wrote %s\n", val_accuracy,
              static_cast<long long>(p.outputs.size(0)), history.samples_per_second(), out->path().string().c_str());
  out->keep();
  if (logs) logs->keep();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program("flowers_dense", [&] { return run(parse_args(argc, argv)); });
}
