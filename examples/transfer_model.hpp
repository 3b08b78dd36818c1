// The flowers transfer-learning model of the lab, shared by flowers_transfer
// (which trains and saves it) and flowers_evaluate / flowers_predict (which
// rebuild it from the saved file's metadata alone):
//
//   Sequential([MobileNetV2(input_shape=[S, S, 3], include_top=False),
//               Flatten() or GlobalAveragePooling2D(), Dense(classes, softmax)])
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "distributed/process_group.hpp"
#include "examples/checkpointing.hpp"
#include "examples/flowers_common.hpp"
#include "nn/history.hpp"
#include "nn/progress.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/safetensors.hpp"
#include "nn/sequential.hpp"
#include "nn/trainer.hpp"

namespace petal::examples {

struct TransferModel {
  std::shared_ptr<nn::Sequential> model;
  std::shared_ptr<nn::MobileNetV2> base;
  std::string head;  // "flatten" or "gap"
  int input_size = 192;
  data::PixelScale scale = data::PixelScale::MinusOneOne;
  std::vector<std::string> classes;
};

// Untrained head (Keras initialisers from default_generator()), base without weights.
TransferModel build_transfer_model(int input_size, const std::string& head, std::vector<std::string> classes,
                                   data::PixelScale scale);

// What a saved model needs to be rebuilt: architecture, head, input_size,
// classes (comma separated), preprocessing ("mobilenet" / "lab") and its formula.
nn::Metadata transfer_metadata(const TransferModel& m);

// Rebuilds the model from a file written with transfer_metadata() and loads
// all its weights. FormatError naming the file when the metadata is missing.
TransferModel load_transfer_model(const std::filesystem::path& path);

struct TrainOptions {
  int epochs = 10;
  std::int64_t batch = 64;
  double learning_rate = 1e-3;
  std::uint64_t seed = 42;
  bool augment = false;   // random horizontal flips (no cache then)
  bool allow_cache = true;
  nn::Verbosity verbose = nn::Verbosity::Auto;
  // --checkpoint/--resume: checkpoints of what trains (the head alone when
  // the frozen base is cached) after every epoch.
  CheckpointOptions checkpoints;
  // Added to fit()'s (--tensorboard: nn::TensorBoard).
  std::vector<std::shared_ptr<nn::Callback>> callbacks;
  // --distributed: train data-parallel over this group (batch: the global
  // batch); the feature cache pass is split across the ranks too. Null: one process.
  std::shared_ptr<distributed::ProcessGroup> group;
};

struct TrainOutcome {
  nn::History history;
  double val_accuracy = 0;  // of the last epoch
  std::vector<std::int64_t> predicted;  // validation rows, in order
  std::vector<std::vector<std::int64_t>> confusion;
  bool cache = false;
  double cache_seconds = 0;    // computing the cached features (training + validation images)
  double cache_median_batch_rate = 0;  // img/s of the cache pass's median full batch
  double images_per_second = 0;  // training images per second of training (the cache pass included)
  int resumed_epochs = 0;        // epochs done before this run (TrainOptions::resume)
};

// Trains what is trainable of m.model with Adam and categorical
// cross-entropy on `train`, validating on `val` after every epoch. Training
// batches come in the order of a TensorBatchSource over the rows (shuffled
// with the seed, drop_remainder). When the leading layers are frozen and
// nothing augments, their output is computed once per image and the rest
// trains from that cache (reported on standard output): the same batches,
// the same model within float tolerance.
TrainOutcome train_transfer_model(TransferModel& m, const LabeledImages& train, const LabeledImages& val,
                                  const TrainOptions& options);

}  // namespace petal::examples
