// A small residual network trained on the flowers from random
// initialisation, written with the functional API (issue 13):
//
//   image -> Conv 3x3/2 -> [down block, residual block] x 3 -> GAP of the last two stages,
//            concatenated -> Dropout -> Dense(5, softmax)
//
// A block is two separable convolutions (DepthwiseConv2D 3x3 -> BN -> ReLU6 ->
// Conv2D 1x1 -> BN), added to its input (identity, or a strided 1x1 Conv2D
// -> BN when the block halves the image), then ReLU6. Every convolution is
// bias-free and followed by BatchNormalization, so nn::Model runs each
// Conv -> BN (-> ReLU6) chain as one fused op. Adam with a cosine decay of
// the learning rate over the whole run, categorical cross-entropy.
//
// Data: the photos are decoded once and kept in memory (uint8) at 9/8 of
// --size; training batches take a random --size crop of each, flipped
// left-right half the time and brightened or darkened by up to 0.2; the
// validation images (all 690 of the first 3 shards) take the centre crop.
// Writes results.json (flowers_dense's schema), curves.svg, predictions.png
// and model.safetensors into --out.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/assets.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "data/file_list.hpp"
#include "data/flowers.hpp"
#include "examples/distributed_run.hpp"
#include "examples/flowers_common.hpp"
#include "nn/json.hpp"
#include "nn/nn.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;
namespace ex = petal::examples;

namespace {

struct Options {
  std::string data;
  int epochs = 12;
  std::int64_t batch = 32;
  double lr = 2e-3;
  std::uint64_t seed = 42;
  std::string out = "out/flowers_from_scratch";
  std::string device = "cpu";
  int size = 112;
  std::int64_t steps_per_epoch = 0;  // 0: one pass of the training images
  std::optional<std::string> tensorboard;  // --tensorboard DIR (an empty DIR is a usage error)
  bool distributed = false;
  bool sync_batch_norm = false;
};

const char* kUsage =
    "usage: flowers_from_scratch [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N] [--out DIR]\n"
    "                            [--device cpu|cuda] [--size N] [--steps-per-epoch N] [--tensorboard DIR]\n"
    "                            [--distributed [--sync-batch-norm]]\n"
    "  Trains a small residual network of separable convolutions (functional API: Add skip connections,\n"
    "  Concatenate of two stages' pooled features) from random initialisation on the flowers TFRecords,\n"
    "  with random crops, flips and brightness; Adam with a cosine-decayed learning rate, categorical\n"
    "  cross-entropy; validation on the first 3 shards (690 images), training on the other 13.\n"
    "  --data DIR    folder of the *.tfrec shards (default: flowers-192 in the assets search path)\n"
    "  --epochs N    training epochs (default 12)\n"
    "  --batch N     batch size (default 32)\n"
    "  --lr X        Adam's initial learning rate, decayed to 0 along a cosine (default 0.002)\n"
    "  --seed N      seed for initialisation, shuffling and augmentation (default 42)\n"
    "  --out DIR     output folder, created if missing (default out/flowers_from_scratch): results.json,\n"
    "                curves.svg, predictions.png, model.safetensors\n"
    "  --device D    cpu (default), cuda or cuda:N: where the model trains\n"
    "  --size N      side of the network's input in pixels, 32 to 192 (default 112); the photos are held\n"
    "                at 9/8 of it (at most 192) for the random crops\n"
    "  --steps-per-epoch N  batches per epoch (default: one pass of the training images)\n"
    "  --tensorboard DIR  TensorBoard event files of every epoch in DIR/train and DIR/validation\n"
    "                (view with: tensorboard --logdir DIR)\n"
    "  --distributed data-parallel over the MPI launcher's ranks (mpirun -np N flowers_from_scratch\n"
    "                --distributed ...): --batch is the global batch; batch normalization uses each rank's\n"
    "                own batch statistics; rank 0 prints and writes every output (docs/distributed.md)\n"
    "  --sync-batch-norm  with --distributed: batch normalization uses the global batch's statistics\n"
    "                (Keras's synchronized=True, PyTorch's SyncBatchNorm)\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

Options parse_args(int argc, char** argv) {
  const ex::CommandLine cl = ex::parse_command_line(
      argc, argv, "flowers_from_scratch", kUsage,
      {"--data", "--epochs", "--batch", "--lr", "--seed", "--out", "--device", "--size", "--steps-per-epoch",
       "--tensorboard"},
      {"--distributed", "--sync-batch-norm"},
      ex::Positional::None);
  Options o;
  o.data = cl.get("--data");
  o.epochs = static_cast<int>(cl.get_int("--epochs", o.epochs, 1, ex::kMaxEpochs));
  o.batch = cl.get_int("--batch", o.batch, 1, ex::kMaxBatch);
  o.lr = cl.get_positive_double("--lr", o.lr, ex::kMaxLearningRate);
  o.seed = static_cast<std::uint64_t>(cl.get_int("--seed", 42, 0, ex::kMaxSeed));
  o.out = cl.get("--out", o.out);
  o.device = cl.get("--device", o.device);
  o.size = static_cast<int>(cl.get_int("--size", o.size, 32, data::kFlowerImageSize));
  o.steps_per_epoch = cl.get_int("--steps-per-epoch", 0, 1, ex::kMaxEpochs * 1000);
  if (cl.values.count("--tensorboard")) o.tensorboard = cl.get("--tensorboard");
  o.distributed = cl.switches.count("--distributed") > 0;
  o.sync_batch_norm = cl.switches.count("--sync-batch-norm") > 0;
  if (o.sync_batch_norm && !o.distributed) throw ex::UsageError("--sync-batch-norm needs --distributed");
  return o;
}

// ---- the network ----

BatchNormOptions bn_named(const std::string& name) {
  BatchNormOptions o;
  o.momentum = 0.9;  // a few hundred steps in all: moving statistics that keep up
  o.name = name;
  return o;
}

// Conv2D (no bias) -> BatchNormalization (-> ReLU6): one fused op in nn::Model.
SymbolicTensor conv_bn(const SymbolicTensor& x, std::int64_t filters, std::int64_t kernel, std::int64_t stride,
                       bool relu, const std::string& name) {
  ConvOptions o;
  o.strides = stride;
  o.padding = Padding::Same;
  o.use_bias = false;
  o.name = name;
  SymbolicTensor y = layer<BatchNormalization>(bn_named(name + "_bn"))(layer<Conv2D>(filters, kernel, o)(x));
  return relu ? layer<ReLU>(6.0, name + "_relu")(y) : y;
}

// DepthwiseConv2D 3x3 -> BN -> ReLU6 -> Conv2D 1x1 -> BN (-> ReLU6).
SymbolicTensor separable_bn(const SymbolicTensor& x, std::int64_t filters, std::int64_t stride, bool relu,
                            const std::string& name) {
  DepthwiseConvOptions o;
  o.strides = stride;
  o.padding = Padding::Same;
  o.use_bias = false;
  o.name = name + "_dw";
  SymbolicTensor y = layer<DepthwiseConv2D>(3, o)(x);
  y = layer<ReLU>(6.0, name + "_dw_relu")(layer<BatchNormalization>(bn_named(name + "_dw_bn"))(y));
  return conv_bn(y, filters, 1, 1, relu, name + "_pw");
}

// Two separable convolutions added to the input (stride 1, same width) or to
// a strided 1x1 projection of it, then ReLU6.
SymbolicTensor residual_block(const SymbolicTensor& x, std::int64_t filters, std::int64_t stride,
                              const std::string& name) {
  SymbolicTensor y = separable_bn(x, filters, stride, true, name + "_a");
  y = separable_bn(y, filters, 1, false, name + "_b");
  const bool project = stride != 1 || x.shape()[2] != filters;
  const SymbolicTensor shortcut = project ? conv_bn(x, filters, 1, stride, false, name + "_shortcut") : x;
  return layer<ReLU>(6.0, name + "_out")(layer<Add>(name + "_add")({y, shortcut}));
}

std::shared_ptr<Model> build_model(int size, std::int64_t num_classes) {
  SymbolicTensor image = Input({size, size, 3}, "image");
  SymbolicTensor x = conv_bn(image, 32, 3, 2, true, "stem");  // size/2
  x = residual_block(x, 64, 2, "block1_down");                // size/4
  x = residual_block(x, 64, 1, "block1");
  x = residual_block(x, 128, 2, "block2_down");  // size/8
  const SymbolicTensor stage2 = residual_block(x, 128, 1, "block2");
  x = residual_block(stage2, 256, 2, "block3_down");  // size/16
  const SymbolicTensor stage3 = residual_block(x, 256, 1, "block3");
  // Features of two scales side by side: 128 + 256 channels.
  SymbolicTensor features = layer<Concatenate>(-1, "features")(
      {layer<GlobalAveragePooling2D>("stage2_pool")(stage2), layer<GlobalAveragePooling2D>("stage3_pool")(stage3)});
  features = layer<Dropout>(0.3, "dropout")(features);
  DenseOptions dense;
  dense.name = "predictions";
  SymbolicTensor probabilities = layer<Dense>(num_classes, "softmax", dense)(features);
  return std::make_shared<Model>(image, probabilities, "flowers_from_scratch");
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int run(const Options& o) {
  const auto start = Clock::now();
  const ex::DistributedRun ranks = ex::start_distributed(o.distributed);
  const Device device = ex::select_device(o.device);
  const fs::path data_dir = find_asset("flowers-192", o.data);
  // Rank 0 writes every output; the other ranks only train.
  std::optional<ex::OutputFolder> out, logs;
  if (ranks.chief()) out.emplace(o.out, "--out");
  if (o.tensorboard && ranks.chief()) logs.emplace(*o.tensorboard, "--tensorboard");
  manual_seed(o.seed);

  // ---- data ----
  const std::vector<std::string> classes(data::kFlowerClasses.begin(), data::kFlowerClasses.end());
  const auto num_classes = static_cast<std::int64_t>(classes.size());
  const int held = std::min(data::kFlowerImageSize, o.size * 9 / 8);  // room for the random crops
  const data::FileSplit split = data::split_flowers_shards(data_dir);
  const ex::LabeledImages train = ex::read_labeled_shards(split.training, held, num_classes);
  const ex::LabeledImages val = ex::read_labeled_shards(split.validation, held, num_classes);
  PETAL_CHECK(train.size() >= o.batch, ValueError, "flowers folder '", data_dir.string(), "' has ", train.size(),
              " training images, fewer than one batch (--batch ", o.batch, ")");
  if (ranks.chief())
    std::printf("data: %s: %lld training images (%zu shards), %lld validation images (%zu shards), held at %dx%d, "
              "decoded in %.1fs\n",
              data_dir.string().c_str(), static_cast<long long>(train.size()), split.training.size(),
              static_cast<long long>(val.size()), split.validation.size(), held, held, seconds_since(start));

  const data::PixelScale scale = data::PixelScale::MinusOneOne;
  ex::RowAugmentation augment;
  augment.random_flip = true;
  augment.crop = o.size;
  augment.random_crop = true;
  augment.max_brightness_delta = 0.2f;
  ex::RowAugmentation centre;
  centre.crop = o.size;
  ex::ImageRowsSource train_source(train, ex::one_hot(train.classes, num_classes), o.batch, true, o.seed, true, scale,
                                   augment);
  ex::ImageRowsSource val_source(val, ex::one_hot(val.classes, num_classes), o.batch, false, o.seed, false, scale,
                                 centre);
  const std::int64_t steps = o.steps_per_epoch > 0 ? o.steps_per_epoch : train_source.steps_per_epoch();

  // ---- model ----
  std::shared_ptr<Model> model = build_model(o.size, num_classes);
  if (o.sync_batch_norm) set_synchronized_batch_norm(*model);
  model->to(device);
  if (ranks.chief()) std::cout << model->summary();
  if (ranks.chief() && ranks.size() > 1)
    std::printf("data-parallel over %d ranks (%s), batch normalization over %s\n", ranks.size(),
                ranks.group->backend().c_str(), o.sync_batch_norm ? "the global batch" : "each rank's share");

  auto adam = std::make_shared<Adam>(o.lr);
  adam->set_schedule(std::make_shared<CosineDecay>(o.lr, steps * o.epochs));
  Trainer trainer(model);
  trainer.compile(adam, Loss::categorical_crossentropy(), {"accuracy"});
  // Data-parallel: every rank draws the same global batches (the sources'
  // own seeded generators) and trains on its rows.
  if (ranks.group) distributed::distribute(trainer, ranks.group);
  distributed::ShardedBatchSource train_share(train_source, ranks.rank(), ranks.size());
  distributed::ShardedBatchSource val_share(val_source, ranks.rank(), ranks.size());
  FitOptions fit;
  fit.epochs = o.epochs;
  fit.steps_per_epoch = steps;
  fit.validation = &val_share;
  if (!ranks.chief()) fit.verbose = Verbosity::Quiet;
  if (logs) fit.callbacks.push_back(std::make_shared<TensorBoard>(logs->path()));
  const History history = trainer.fit(train_share, fit);
  if (history.epochs.empty())
    throw Error(str_cat("training stopped before the first epoch ended: ", history.stop_reason));

  // ---- outputs ----
  if (!ranks.chief()) return 0;  // rank 0 reports and writes
  const Trainer::Predictions p = trainer.predict_with_targets(val_source);
  const std::vector<std::int64_t> predicted = predicted_classes(p.outputs);
  const auto confusion = confusion_matrix(target_classes(p.targets), predicted, num_classes);
  const double val_accuracy = history["val_accuracy"].back();
  write_training_curves(history, out->file("curves.svg"), "flowers_from_scratch");
  ex::write_prediction_grid(out->file("predictions.png"), val, predicted, classes);
  save_weights(*model, out->file("model.safetensors"),
               {{"architecture", "flowers_from_scratch"},
                {"input_size", std::to_string(o.size)},
                {"classes", ex::join(classes, ",")},
                {"preprocessing", ex::preprocessing_formula(scale)}});
  const double wall = seconds_since(start);
  const std::string results = ex::flowers_results_json(
      val_accuracy, history, history.samples_per_second(), classes, confusion,
      {.epochs = o.epochs,
       .batch = o.batch,
       .learning_rate = o.lr,
       .optimizer = "adam (cosine decay)",
       .head = "",
       .seed = o.seed,
       .device = device.str()},
      {{"wall_seconds", json::number(wall)},
       {"input_size", std::to_string(o.size)},
       {"parameters", std::to_string(model->count_params())},
       {"augment", json::quote(str_cat("random ", o.size, "x", o.size, " crop of ", held, "x", held,
                                       ", horizontal flip, brightness +-0.2"))},
       {"preprocessing", json::quote(ex::preprocessing_formula(scale))}});
  write_text_file_atomic(out->file("results.json"), results);

  std::printf("val_accuracy %.4f (%lld images), %.1f training images/s; wall %.1fs; wrote %s\n", val_accuracy,
              static_cast<long long>(p.outputs.size(0)), history.samples_per_second(), wall,
              out->path().string().c_str());
  out->keep();
  if (logs) logs->keep();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_program("flowers_from_scratch", [&] { return run(parse_args(argc, argv)); });
}
