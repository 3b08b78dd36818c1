// Saving and loading a model's weights as safetensors keyed by each weight's
// structural path in the model ("dense_1/kernel",
// "mobilenetv2_1.00_192/block_1_expand_BN/moving_mean"; nn/module.hpp), so
// any instance of a model reads another's file whatever the order in which
// models were made; and training checkpoints
// that also carry the optimizer's slots and step count, the epoch and the
// state of default_generator(), so fit() resumes exactly where it stopped.
// Every save is atomic (temporary file, then rename).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nn/history.hpp"
#include "nn/module.hpp"
#include "nn/optimizers.hpp"
#include "nn/safetensors.hpp"

namespace petal::nn {

// Writes every weight (parameters and buffers) of a built model: as
// safetensors, or in Keras 2's HDF5 layout when the name ends in ".h5"
// (nn/keras_h5.hpp; `metadata` is then not written).
void save_weights(const Module& model, const std::filesystem::path& path, const Metadata& metadata = {});

struct LoadOptions {
  // Only names present in both the model and the file matter (the rest of
  // either side is left alone), e.g. a base without its classifier.
  bool by_name = false;
  // A weight whose shape differs (or, with by_name off, that is missing) is
  // skipped and listed in the report instead of failing.
  bool skip_mismatch = false;
};

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> skipped;  // "name: reason"
  Metadata metadata;
};

// Files written before structural paths are keyed by display names
// ("dense_3/kernel"): a safetensors file is read by path unless more of the
// model's display names than paths are in it (then by display name).
// Reads safetensors or Keras HDF5 (legacy or Keras 3 .weights.h5), told apart
// by the file's bytes; Keras files match as nn/keras_h5.hpp describes.
// Checks every name and shape first and throws one FormatError listing all
// mismatches (missing names, unexpected names, wrong shapes or dtypes) before
// changing any weight; then copies the values in. Tensors named
// "optimizer/..." (checkpoints) are never expected by a model.
LoadReport load_weights(Module& model, const std::filesystem::path& path, const LoadOptions& options = {});

// Whether `reader` holds the model's weights by structural path (true) or
// by display name (files written before paths; more display names match).
bool keyed_by_path(const std::vector<WeightRef>& weights, const SafetensorsReader& reader);

// Model weights + "optimizer/<parameter path>/<slot>" tensors, with metadata
// "petal_checkpoint" = "1", "epoch" (epochs completed), "optimizer",
// "optimizer_iterations", "learning_rate", "rng_state" plus `extra`.
void save_checkpoint(const std::filesystem::path& path, const Module& model, const Optimizer& optimizer,
                     int epochs_completed, const Metadata& extra = {});
// Restores weights, optimizer state and default_generator(); returns the
// number of epochs completed (pass it to fit as initial_epoch).
int load_checkpoint(const std::filesystem::path& path, Module& model, Optimizer& optimizer);

// The files that a ModelCheckpoint path pattern ("ckpt/epoch_{epoch}.safetensors",
// "{epoch}" in the file name) names, with their epoch numbers, in ascending
// epoch order. Temporaries ("....tmp.<pid>") and other names never match. A
// pattern without "{epoch}" names one file (epoch -1) when it exists.
std::vector<std::pair<int, std::filesystem::path>> checkpoint_files(const std::filesystem::path& pattern);

// The newest complete checkpoint among checkpoint_files(pattern): files that
// do not open as a petal checkpoint of their epoch are passed over (and
// listed in `passed_over` with the reason when given). nullopt when none.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& pattern,
                                                       std::vector<std::string>* passed_over = nullptr);

// The history of every epoch up to a checkpoint, which ModelCheckpoint saves
// with it (metadata "history", with the throughput figures train_samples and
// train_seconds); empty when the file carries none.
History checkpoint_history(const std::filesystem::path& path);

}  // namespace petal::nn
