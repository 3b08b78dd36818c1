// Keras's everyday callbacks for Trainer::fit.
#pragma once

#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nn/trainer.hpp"

namespace petal::nn {

enum class MonitorMode { Auto, Min, Max };  // Auto: max for accuracies, min otherwise

// Stops when `monitor` has not improved by more than min_delta for `patience`
// epochs. With restore_best_weights the model ends training with the weights
// of its best epoch (as Keras 3 does, also when training ran to the end).
class EarlyStopping : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double min_delta = 0.0;
    int patience = 0;
    MonitorMode mode = MonitorMode::Auto;
    bool restore_best_weights = false;
  };
  explicit EarlyStopping(Options options);
  void on_train_begin(Trainer&) override;
  void on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) override;
  void on_train_end(Trainer& trainer, const History&) override;
  int best_epoch() const { return best_epoch_; }
  int stopped_epoch() const { return stopped_epoch_; }

 private:
  Options options_;
  bool maximize_ = false;
  double best_ = 0.0;
  int best_epoch_ = -1, stopped_epoch_ = -1, wait_ = 0;
  std::vector<Tensor> best_weights_;
};

// Saves the weights (or a full checkpoint with the optimizer) after each epoch,
// or only when `monitor` improves. "{epoch}" in the path is replaced by the
// 1-based epoch number. Full checkpoints also carry the history of every
// epoch so far (checkpoint_history), including those of the run resumed from
// when set_initial_history was given them. Every file is written atomically.
class ModelCheckpoint : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    bool save_best_only = false;
    bool save_weights_only = true;  // false: save_checkpoint with optimizer, epoch and RNG state
    MonitorMode mode = MonitorMode::Auto;
    // > 0 with "{epoch}" in the path: after each save, files of older epochs
    // beyond the newest max_to_keep are deleted (checkpoints can be large).
    int max_to_keep = 0;
  };
  ModelCheckpoint(std::filesystem::path path, Options options);
  explicit ModelCheckpoint(std::filesystem::path path) : ModelCheckpoint(std::move(path), Options{}) {}
  void on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) override;
  // The epochs before fit's initial_epoch (checkpoint_history of the resumed file).
  void set_initial_history(History history) { initial_history_ = std::move(history); }

 private:
  std::filesystem::path path_;
  Options options_;
  bool maximize_ = false;
  double best_;
  History initial_history_;
};

// Rewrites the whole history after every epoch (atomically), as CSV
// (epoch,accuracy,loss,...) or as JSON (History::to_json()) by the extension.
class HistoryLogger : public Callback {
 public:
  explicit HistoryLogger(std::filesystem::path path);
  void on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) override;
  // The epochs before fit's initial_epoch, written ahead of fit's own.
  void set_initial_history(History history) { initial_history_ = std::move(history); }

 private:
  std::filesystem::path path_;
  History initial_history_;
};

// Sets the learning rate at the start of every epoch: lr = schedule(epoch, lr)
// (Keras's LearningRateScheduler), or per batch: before every training step
// lr = schedule(step, lr) with step = the optimizer's iterations() (steps
// taken so far over all epochs, 0 first; resumed from checkpoints). Setting
// the rate replaces any schedule object the optimizer had.
class LearningRateScheduler : public Callback {
 public:
  enum class Every { Epoch, Batch };
  explicit LearningRateScheduler(std::function<double(int epoch, double lr)> schedule);
  // Every::Batch: schedule(step, lr) before each batch; Every::Epoch:
  // schedule(epoch, lr) at each epoch's start.
  LearningRateScheduler(std::function<double(std::int64_t step, double lr)> schedule, Every every);
  void on_epoch_begin(Trainer& trainer, int epoch) override;
  void on_batch_begin(Trainer& trainer, int epoch, std::int64_t step) override;

 private:
  std::function<double(std::int64_t, double)> schedule_;
  Every every_;
};

// Keras's ReduceLROnPlateau: after an epoch where `monitor` has not improved
// (by more than min_delta: below best - min_delta in min mode, above best +
// min_delta in max mode) for `patience` epochs in a row, lr = max(lr *
// factor, min_lr) (only while lr > float32(min_lr)), then `cooldown` epochs
// pass before epochs without improvement count again. The optimizer must
// hold a constant rate, not a schedule (ValueError). Missing monitored
// values throw ValueError (as EarlyStopping).
class ReduceLROnPlateau : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double factor = 0.1;  // in [0, 1)
    int patience = 10;
    bool verbose = false;  // a note through fit's progress printer at each reduction
    MonitorMode mode = MonitorMode::Auto;
    double min_delta = 1e-4;
    int cooldown = 0;
    double min_lr = 0.0;
  };
  explicit ReduceLROnPlateau(Options options);
  ReduceLROnPlateau() : ReduceLROnPlateau(Options{}) {}
  void on_train_begin(Trainer&) override;
  void on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) override;
  double best() const { return best_; }
  int wait() const { return wait_; }

 private:
  void reset();

  Options options_;
  bool maximize_ = false;
  double best_ = 0.0;
  int wait_ = 0, cooldown_counter_ = 0;
};

// Keras's LambdaCallback: any of the hooks, each optional.
//   LambdaCallback log({.on_epoch_end = [](Trainer&, int epoch, const Logs& logs) { ... }});
class LambdaCallback : public Callback {
 public:
  struct Hooks {
    std::function<void(Trainer&)> on_train_begin;
    std::function<void(Trainer&, const History&)> on_train_end;
    std::function<void(Trainer&, int epoch)> on_epoch_begin;
    std::function<void(Trainer&, int epoch, const Logs&)> on_epoch_end;
    std::function<void(Trainer&, int epoch, std::int64_t step)> on_batch_begin;
    std::function<void(Trainer&, int epoch, std::int64_t step, const Logs&)> on_batch_end;
  };
  explicit LambdaCallback(Hooks hooks) : hooks_(std::move(hooks)) {}
  void on_train_begin(Trainer& t) override {
    if (hooks_.on_train_begin) hooks_.on_train_begin(t);
  }
  void on_train_end(Trainer& t, const History& h) override {
    if (hooks_.on_train_end) hooks_.on_train_end(t, h);
  }
  void on_epoch_begin(Trainer& t, int epoch) override {
    if (hooks_.on_epoch_begin) hooks_.on_epoch_begin(t, epoch);
  }
  void on_epoch_end(Trainer& t, int epoch, const Logs& logs) override {
    if (hooks_.on_epoch_end) hooks_.on_epoch_end(t, epoch, logs);
  }
  void on_batch_begin(Trainer& t, int epoch, std::int64_t step) override {
    if (hooks_.on_batch_begin) hooks_.on_batch_begin(t, epoch, step);
  }
  void on_batch_end(Trainer& t, int epoch, std::int64_t step, const Logs& logs) override {
    if (hooks_.on_batch_end) hooks_.on_batch_end(t, epoch, step, logs);
  }

 private:
  Hooks hooks_;
};

// Copies of every weight (parameters and buffers) and their restoration.
std::vector<Tensor> snapshot_weights(const Module& model);
void restore_weights(Module& model, const std::vector<Tensor>& snapshot);

}  // namespace petal::nn
