// The lab's main job: transfer learning on the flowers with MobileNetV2.
//
//   pretrained_model = MobileNetV2(input_shape=[192, 192, 3], include_top=False)
//   pretrained_model.trainable = False
//   model = Sequential([pretrained_model, Flatten(), Dense(5, softmax)])
//   compile(Adam(1e-3), categorical_crossentropy, ['accuracy']); fit(10 epochs, batch 64)
//
// Validation: all 690 images of the first 3 shards; training: the other 13.
// The decoded photos are held in memory (uint8) for the whole run.
//
// Frozen-base feature caching: while the base is frozen (inference-mode BN)
// and nothing augments the images, the base's output for an image never
// changes, so it is computed once per image and the head trains from that
// cache. The batches come in the same order either way (same shuffle of
// rows), so --no-cache gives the same model within float tolerance, only slower.
//
// --fine-tune then unfreezes the whole base and keeps training everything
// with the BN layers frozen in inference mode (the Keras fine-tuning guide's
// choice; their gamma/beta stay fixed too).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/assets.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "data/file_list.hpp"
#include "data/flowers.hpp"
#include "examples/distributed_run.hpp"
#include "examples/flowers_common.hpp"
#include "examples/transfer_model.hpp"
#include "core/atomic_file.hpp"
#include "nn/feature_cache.hpp"
#include "nn/keras_h5.hpp"
#include "nn/json.hpp"
#include "nn/nn.hpp"
#include "nn/onnx_export.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;
namespace ex = petal::examples;

namespace {

const char* kUsage =
    "usage: flowers_transfer [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N] [--out DIR]\n"
    "                        [--weights FILE] [--head flatten|gap] [--augment] [--no-cache]\n"
    "                        [--preprocess mobilenet|lab] [--fine-tune [--fine-tune-epochs N] [--fine-tune-lr X]]\n"
    "                        [--device cpu|cuda] [--checkpoint DIR [--resume]] [--onnx] [--tensorboard DIR]\n"
    "                        [--distributed]\n"
    "  Transfer learning of the lab: MobileNetV2 (192x192, ImageNet weights, frozen) + Flatten + Dense(5, softmax),\n"
    "  Adam, categorical cross-entropy; validation on the first 3 shards (690 images), training on the other 13.\n"
    "  --data DIR            folder of the *.tfrec shards (default: flowers-192 in the assets search path)\n"
    "  --epochs N            frozen-base epochs (default 10)\n"
    "  --batch N             batch size (default 64)\n"
    "  --lr X                Adam learning rate (default 0.001)\n"
    "  --seed N              seed of the head's initialisation and of the shuffling (default 42)\n"
    "  --out DIR             output folder (default out/flowers_transfer): results.json, model.safetensors, model.h5\n"
    "                        (where built with libhdf5), curves.svg, predictions.png (and model.onnx with --onnx)\n"
    "  --weights FILE        MobileNetV2 ImageNet weights: safetensors, Keras .h5 or .weights.h5, told apart by content\n"
    "                        (default mobilenet_v2_1.0_imagenet.safetensors, else the official Keras\n"
    "                        mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5)\n"
    "  --head flatten|gap    Flatten (the lab) or GlobalAveragePooling2D before the Dense layer\n"
    "  --augment             random horizontal flips of the training images (turns the feature cache off)\n"
    "  --no-cache            run the frozen base on every batch instead of caching its output\n"
    "  --preprocess P        mobilenet: x/127.5-1, what the weights expect (default); lab: x/255 like the lab\n"
    "  --fine-tune           afterwards train the whole base too (BN layers stay in inference mode)\n"
    "  --fine-tune-epochs N  (default 5)\n"
    "  --fine-tune-lr X      (default 1e-5)\n"
    "  --device D            cpu (default), cuda or cuda:N: where the model runs (the decoded photos and the\n"
    "                        feature cache stay in host memory; batches are copied over)\n"
    "  --checkpoint DIR      a full checkpoint of what trains (the head alone while the frozen base is cached;\n"
    "                        optimizer, epoch, RNG state and history with it) after every epoch, as\n"
    "                        DIR/epoch_N.safetensors and DIR/fine_tune_epoch_N.safetensors (the newest two kept)\n"
    "  --resume              continue from the newest complete checkpoints in DIR (needs --checkpoint); the run\n"
    "                        ends with the weights an uninterrupted run with the same options reaches\n"
    "  --onnx                also write the trained model as --out/model.onnx (ONNX opset 17; input: the\n"
    "                        preprocessed [N, 192, 192, 3] float32 batch; output: the 5 class probabilities)\n"
    "  --tensorboard DIR     TensorBoard event files of every epoch in DIR/train and DIR/validation (fine-tuning\n"
    "                        in DIR/fine_tune/train and DIR/fine_tune/validation); view with tensorboard --logdir DIR\n"
    "  --distributed         data-parallel over the MPI launcher's ranks (mpirun -np N flowers_transfer\n"
    "                        --distributed ...): --batch is the global batch; the feature cache pass is split\n"
    "                        across the ranks; rank 0 prints and writes every output (docs/distributed.md)\n"
    "Exit status: 0 success, 1 bad data or failed I/O, 2 usage error (docs/exit_codes.md).\n";

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int run(const ex::CommandLine& cl) {
  const auto start = Clock::now();
  const int epochs = static_cast<int>(cl.get_int("--epochs", 10, 1, ex::kMaxEpochs));
  const std::int64_t batch = cl.get_int("--batch", 64, 1, ex::kMaxBatch);
  const double lr = cl.get_positive_double("--lr", 1e-3, ex::kMaxLearningRate);
  const std::uint64_t seed = static_cast<std::uint64_t>(cl.get_int("--seed", 42, 0, ex::kMaxSeed));
  const std::string head = cl.get("--head", "flatten");
  const bool augment = cl.switches.count("--augment") > 0;
  const bool write_onnx = cl.switches.count("--onnx") > 0;
  const bool fine_tune = cl.switches.count("--fine-tune") > 0;
  const int fine_tune_epochs = static_cast<int>(cl.get_int("--fine-tune-epochs", 5, 1, ex::kMaxEpochs));
  const double fine_tune_lr = cl.get_positive_double("--fine-tune-lr", 1e-5, ex::kMaxLearningRate);
  if (head != "flatten" && head != "gap") cl.fail("--head must be flatten or gap");
  const ex::DistributedRun ranks = ex::start_distributed(cl.switches.count("--distributed") > 0);
  const ex::CheckpointOptions checkpoints{cl.get("--checkpoint"), "epoch", cl.switches.count("--resume") > 0,
                                          ranks.chief()};
  if (checkpoints.resume && checkpoints.dir.empty()) cl.fail("--resume needs --checkpoint DIR");
  data::PixelScale scale;
  try {
    scale = ex::parse_preprocessing(cl.get("--preprocess", "mobilenet"));
  } catch (const ValueError& e) {
    cl.fail(str_cat("--preprocess: ", e.what()));
  }
  const Device device = ex::select_device(cl.get("--device", "cpu"));
  const fs::path data_dir = find_asset("flowers-192", cl.get("--data"));
  const fs::path weights = find_first_asset({"mobilenet_v2_1.0_imagenet.safetensors", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5"}, cl.get("--weights"));
  ex::require_regular_file(weights, "--weights");
  // Rank 0 writes every output; the other ranks only train.
  std::optional<ex::OutputFolder> out, logs;
  if (ranks.chief()) out.emplace(cl.get("--out", "out/flowers_transfer"), "--out");
  if (cl.values.count("--tensorboard") && ranks.chief()) logs.emplace(cl.get("--tensorboard"), "--tensorboard");
  ex::prepare_checkpoint_dir(checkpoints);
  manual_seed(seed);

  // ---- model ---- (before the data: bad weights fail in a second, not after decoding)
  const int size = data::kFlowerImageSize;
  const std::vector<std::string> classes(data::kFlowerClasses.begin(), data::kFlowerClasses.end());
  ex::TransferModel tm = ex::build_transfer_model(size, head, classes, scale);
  tm.base->load_weights(weights);
  if (ranks.chief())
    std::printf("weights: %s (%s)\n", weights.string().c_str(),
                nn::weight_file_format_name(nn::weight_file_format(weights)));
  tm.base->set_trainable(false);
  tm.model->to(device);
  Sequential& model = *tm.model;

  // ---- data ----
  const data::FileSplit split = data::split_flowers_shards(data_dir);
  const auto num_classes = static_cast<std::int64_t>(classes.size());
  const ex::LabeledImages train = ex::read_labeled_shards(split.training, size, num_classes);
  const ex::LabeledImages val = ex::read_labeled_shards(split.validation, size, num_classes);
  PETAL_CHECK(train.size() >= batch, ValueError, "flowers folder '", data_dir.string(), "' has ", train.size(),
              " training images, fewer than one batch (--batch ", batch, ")");
  if (ranks.chief()) {
    std::printf("data: %s: %lld training images (%zu shards), %lld validation images (%zu shards), decoded in %.1fs\n",
                data_dir.string().c_str(), static_cast<long long>(train.size()), split.training.size(),
                static_cast<long long>(val.size()), split.validation.size(), seconds_since(start));
    std::cout << model.summary();
    if (ranks.size() > 1) std::printf("data-parallel over %d ranks (%s)\n", ranks.size(), ranks.group->backend().c_str());
  }

  ex::TrainOptions train_options;
  train_options.epochs = epochs;
  train_options.batch = batch;
  train_options.learning_rate = lr;
  train_options.seed = seed;
  train_options.augment = augment;
  train_options.allow_cache = !cl.switches.count("--no-cache");
  train_options.checkpoints = checkpoints;
  if (ranks.size() > 1) train_options.group = ranks.group;
  if (!ranks.chief()) train_options.verbose = Verbosity::Quiet;
  if (logs) train_options.callbacks.push_back(std::make_shared<TensorBoard>(logs->path()));
  const ex::TrainOutcome frozen = ex::train_transfer_model(tm, train, val, train_options);

  ex::TrainOutcome tuned;
  if (fine_tune) {
    tm.base->set_trainable(true);
    tm.base->freeze_batch_norm();
    if (ranks.chief())
      std::printf("fine-tuning: whole base trainable (%lld trainable parameters, BN in inference mode), lr %g, %d epochs\n",
                static_cast<long long>(model.count_trainable_params()), fine_tune_lr, fine_tune_epochs);
    ex::TrainOptions tune_options = train_options;
    tune_options.epochs = fine_tune_epochs;
    tune_options.learning_rate = fine_tune_lr;
    tune_options.seed = seed + 1;  // another order than the frozen epochs
    tune_options.checkpoints.name = "fine_tune_epoch";
    tune_options.callbacks.clear();
    if (logs) tune_options.callbacks.push_back(std::make_shared<TensorBoard>(logs->path() / "fine_tune"));
    // Fine-tuning checkpoints continue frozen weights that this run did not
    // change; after frozen epochs trained now they belong to another run.
    tune_options.checkpoints.resume = checkpoints.resume && frozen.resumed_epochs >= epochs;
    tuned = ex::train_transfer_model(tm, train, val, tune_options);
  }
  const ex::TrainOutcome& final_outcome = fine_tune ? tuned : frozen;
  const bool use_cache = frozen.cache;
  const double cache_seconds = frozen.cache_seconds;

  // ---- outputs ----
  if (!ranks.chief()) return 0;  // rank 0 reports and writes
  save_weights(model, out->file("model.safetensors"), ex::transfer_metadata(tm));
  // The same weights in Keras 2's layout, for the lab's Keras code:
  // model.load_weights("model.h5"). Keras 2 orders a nested model's weights by
  // what is trainable, so they are written as the lab loads them, with
  // pretrained_model.trainable = False (also after --fine-tune).
  tm.base->set_trainable(false);
  if (nn::keras_h5_available()) {
    save_weights(model, out->file("model.h5"));
  } else {
    std::fprintf(stderr, "flowers_transfer: model.h5 not written: this petal was built without libhdf5 "
                         "(model.safetensors has the same weights)\n");
  }
  if (write_onnx) onnx::export_model(model, out->file("model.onnx"));
  write_training_curves(frozen.history, out->file("curves.svg"), "flowers_transfer (frozen base)");
  if (fine_tune) write_training_curves(tuned.history, out->file("curves_fine_tune.svg"), "flowers_transfer (fine-tuning)");
  ex::write_prediction_grid(out->file("predictions.png"), val, final_outcome.predicted, classes);
  const double wall = seconds_since(start);
  std::vector<std::pair<std::string, std::string>> extra = {
      {"cache", use_cache ? "true" : "false"},
      {"cache_seconds", json::number(cache_seconds)},
      {"cache_median_batch_images_per_second", json::number(frozen.cache_median_batch_rate)},
      {"wall_seconds", json::number(wall)},
      {"preprocessing", json::quote(ex::preprocessing_formula(scale))},
      {"augment", augment ? "true" : "false"}};
  if (fine_tune) {
    const std::string history = tuned.history.to_json({"loss", "accuracy", "val_loss", "val_accuracy"});
    extra.emplace_back("fine_tune", "{\"val_accuracy\": " + json::number(tuned.val_accuracy) + ", \"history\": " +
                                        history + ", \"images_per_second\": " +
                                        json::number(tuned.images_per_second) + ", \"confusion_matrix\": " +
                                        ex::matrix_json(tuned.confusion) + ", \"epochs\": " +
                                        std::to_string(fine_tune_epochs) + ", \"learning_rate\": " +
                                        json::number(fine_tune_lr) + "}");
  }
  const std::string results = ex::flowers_results_json(frozen.val_accuracy, frozen.history, frozen.images_per_second,
                                                       classes, frozen.confusion,
                                                       {.epochs = epochs,
                                                        .batch = batch,
                                                        .learning_rate = lr,
                                                        .optimizer = "adam",
                                                        .head = head,
                                                        .seed = seed,
                                                        .device = device.str()},
                                                       extra);
  write_text_file_atomic(out->file("results.json"), results);

  std::printf("val_accuracy %.4f after %d frozen epochs", frozen.val_accuracy, epochs);
  if (fine_tune) std::printf(", %.4f after %d fine-tuning epochs", tuned.val_accuracy, fine_tune_epochs);
  std::printf(" (%lld validation images); %.0f training images/s; cache %s; wall %.1fs; wrote %s\n",
              static_cast<long long>(val.size()), frozen.images_per_second, use_cache ? "on" : "off", wall,
              out->path().string().c_str());
  out->keep();
  if (logs) logs->keep();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::run_program("flowers_transfer", [&] {
    return run(ex::parse_command_line(
        argc, argv, "flowers_transfer", kUsage,
        {"--data", "--epochs", "--batch", "--lr", "--seed", "--out", "--weights", "--head", "--preprocess",
         "--fine-tune-epochs", "--fine-tune-lr", "--device", "--checkpoint", "--tensorboard"},
        {"--augment", "--no-cache", "--fine-tune", "--resume", "--onnx", "--distributed"}, ex::Positional::None));
  });
}
