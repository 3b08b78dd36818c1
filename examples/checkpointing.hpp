// --checkpoint DIR and --resume of the training examples. A full checkpoint
// (weights, Adam's state, epoch, RNG state, history) goes to
// DIR/<name>_<epoch>.safetensors after every epoch, atomically, keeping the
// newest two; --resume continues from the newest complete one, and the run
// ends with the weights an uninterrupted run with the same options reaches,
// bit for bit (the data sources replay epoch e's order from the epoch number).
// Header-only: a handful of lines over nn's checkpoint functions.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "nn/callbacks.hpp"
#include "nn/trainer.hpp"
#include "nn/weights_io.hpp"

namespace petal::examples {

struct CheckpointOptions {
  std::filesystem::path dir;  // empty: no checkpoints
  std::string name = "epoch";
  bool resume = false;
  // false: read the folder (--resume) but write nothing (data-parallel ranks
  // other than 0, which load the checkpoint rank 0 writes).
  bool write = true;
  std::filesystem::path pattern() const { return dir / (name + "_{epoch}.safetensors"); }
};

// Creates the folder (and its parents) and checks that files can be written
// in it, so a bad --checkpoint fails before any work, not after an epoch.
inline void prepare_checkpoint_dir(const CheckpointOptions& options) {
  if (options.dir.empty() || !options.write) return;
  const std::string what = "--checkpoint " + options.dir.string();
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  PETAL_CHECK(!ec, IOError, what, ": cannot create the folder: ", ec.message());
  PETAL_CHECK(std::filesystem::is_directory(options.dir), IOError, what, ": not a folder");
  const std::filesystem::path probe = options.dir / ".petal_write_probe";
  try {
    write_text_file_atomic(probe, "");
  } catch (const IOError& e) {
    throw IOError(what + ": not writable: " + e.what());
  }
  std::filesystem::remove(probe, ec);
}

// The checkpoint --resume continues from: the newest complete one (files
// that do not load are passed over, with a note on stderr).
struct ResumePoint {
  std::optional<std::filesystem::path> path;
  int epoch = 0;  // epochs it holds
};

inline ResumePoint find_resume_point(const CheckpointOptions& options) {
  ResumePoint point;
  if (options.dir.empty() || !options.resume) return point;
  std::vector<std::string> passed_over;
  point.path = nn::latest_checkpoint(options.pattern(), &passed_over);
  for (const auto& why : passed_over) std::fprintf(stderr, "resume: passing over %s\n", why.c_str());
  if (point.path) {
    for (const auto& [epoch, path] : nn::checkpoint_files(options.pattern()))
      if (path == *point.path) point.epoch = epoch;
  }
  return point;
}

// trainer.fit(train, fit) with a checkpoint after every epoch, first resuming
// from `resume` (weights, optimizer and generator state) when it names a
// file, else removing the checkpoints of this name that are in the folder. Returns the history of every epoch, those before the resume included;
// a checkpoint that holds every epoch already trains nothing more.
inline nn::History fit_with_checkpoints(nn::Trainer& trainer, nn::BatchSource& train, nn::FitOptions fit,
                                        const CheckpointOptions& options, const ResumePoint& resume) {
  nn::History history;
  if (!options.dir.empty()) {
    if (options.write) std::filesystem::create_directories(options.dir);
    auto checkpoint = std::make_shared<nn::ModelCheckpoint>(
        options.pattern(), nn::ModelCheckpoint::Options{.save_weights_only = false, .max_to_keep = 2});
    if (!resume.path) {
      if (!options.write) return trainer.fit(train, fit);
      // A run from the first epoch supersedes the checkpoints of this name a
      // run before it left (another lineage: --resume must never pick them).
      for (const auto& [epoch, path] : nn::checkpoint_files(options.pattern())) std::filesystem::remove(path);
    } else {
      fit.initial_epoch = nn::load_checkpoint(*resume.path, trainer.model(), trainer.optimizer());
      history = nn::checkpoint_history(*resume.path);
      checkpoint->set_initial_history(history);
      if (fit.verbose != nn::Verbosity::Quiet)
        std::printf("resuming from %s: %d of %d epochs done\n", resume.path->string().c_str(), fit.initial_epoch,
                    fit.epochs);
    }
    if (options.write) fit.callbacks.push_back(checkpoint);
  }
  if (fit.initial_epoch < fit.epochs) history.extend(trainer.fit(train, fit));
  return history;
}

}  // namespace petal::examples
