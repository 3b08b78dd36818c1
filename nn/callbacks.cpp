#include "nn/callbacks.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/atomic_file.hpp"
#include "kernels/ops_constant.hpp"
#include "nn/json.hpp"
#include "nn/weights_io.hpp"

namespace petal::nn {

namespace {

bool maximizes(MonitorMode mode, const std::string& monitor) {
  if (mode == MonitorMode::Max) return true;
  if (mode == MonitorMode::Min) return false;
  return monitor.find("acc") != std::string::npos;
}

double monitored(const Logs& logs, const std::string& monitor, const char* who) {
  auto it = logs.find(monitor);
  std::string available;
  for (const auto& [k, v] : logs) available += " " + k;
  PETAL_CHECK(it != logs.end(), ValueError, who, ": monitored value \"", monitor, "\" is not logged (available:",
              available, "); validation data missing?");
  return it->second;
}

}  // namespace

std::vector<Tensor> snapshot_weights(const Module& model) {
  std::vector<Tensor> out;
  for (const auto& w : model.weights()) out.push_back(w.variable.data().clone());
  return out;
}

void restore_weights(Module& model, const std::vector<Tensor>& snapshot) {
  std::vector<WeightRef> weights = model.weights();
  PETAL_CHECK(weights.size() == snapshot.size(), ValueError, "restore_weights: snapshot of ", snapshot.size(),
              " weights for a model with ", weights.size());
  for (const WeightRef& w : weights) ops::check_not_declared_constant(w.variable.data(), "restore_weights");
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i].variable.mutable_data().copy_(snapshot[i]);
}

// ---- EarlyStopping ----

EarlyStopping::EarlyStopping(Options options) : options_(std::move(options)) {
  PETAL_CHECK(options_.patience >= 0 && options_.min_delta >= 0, ValueError,
              "EarlyStopping: patience and min_delta must be non-negative");
  maximize_ = maximizes(options_.mode, options_.monitor);
}

void EarlyStopping::on_train_begin(Trainer&) {
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  best_epoch_ = stopped_epoch_ = -1;
  wait_ = 0;
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) {
  const double value = monitored(logs, options_.monitor, "EarlyStopping");
  const bool improved = maximize_ ? value - options_.min_delta > best_ : value + options_.min_delta < best_;
  if (improved) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
    if (options_.restore_best_weights) best_weights_ = snapshot_weights(trainer.model());
    return;
  }
  if (++wait_ > options_.patience) {
    stopped_epoch_ = epoch;
    trainer.stop_training = true;
  }
}

void EarlyStopping::on_train_end(Trainer& trainer, const History& history) {
  if (options_.restore_best_weights && !best_weights_.empty() && !history.epochs.empty() &&
      history.epochs.back() != best_epoch_) {
    restore_weights(trainer.model(), best_weights_);
    if (trainer.progress())
      trainer.progress()->note(str_cat("Restoring model weights from the end of the best epoch: ", best_epoch_ + 1, "."));
  }
}

// ---- ModelCheckpoint ----

ModelCheckpoint::ModelCheckpoint(std::filesystem::path path, Options options)
    : path_(std::move(path)), options_(std::move(options)) {
  maximize_ = maximizes(options_.mode, options_.monitor);
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  PETAL_CHECK(options_.max_to_keep >= 0, ValueError, "ModelCheckpoint: max_to_keep must be non-negative");
}

void ModelCheckpoint::on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) {
  if (options_.save_best_only) {
    const double value = monitored(logs, options_.monitor, "ModelCheckpoint");
    const bool improved = maximize_ ? value > best_ : value < best_;
    if (!improved) return;
    best_ = value;
  }
  std::string path = path_.string();
  const std::string tag = "{epoch}";
  for (auto pos = path.find(tag); pos != std::string::npos; pos = path.find(tag))
    path.replace(pos, tag.size(), std::to_string(epoch + 1));
  if (options_.save_weights_only) {
    save_weights(trainer.model(), path, {{"epoch", std::to_string(epoch + 1)}});
  } else {
    History history = initial_history_;
    history.extend(trainer.history());
    save_checkpoint(path, trainer.model(), trainer.optimizer(), epoch + 1,
                    {{"history", history.to_json()},
                     {"history_train_samples", std::to_string(history.train_samples)},
                     {"history_train_seconds", json::number(history.train_seconds)}});
  }
  if (options_.max_to_keep > 0) {
    // Only once the new file is safely in place, and only older epochs: the
    // newest complete checkpoint is never the one deleted.
    const auto files = checkpoint_files(path_);
    int kept = 0;
    for (auto it = files.rbegin(); it != files.rend(); ++it) {
      if (it->first < 0 || it->first > epoch + 1) continue;
      if (++kept <= options_.max_to_keep) continue;
      std::error_code ec;
      std::filesystem::remove(it->second, ec);
    }
  }
}

// ---- HistoryLogger ----

HistoryLogger::HistoryLogger(std::filesystem::path path) : path_(std::move(path)) {}

void HistoryLogger::on_epoch_end(Trainer& trainer, int, const Logs&) {
  // fit() records the epoch (with its duration) before calling back.
  History history = initial_history_;
  history.extend(trainer.history());
  if (path_.extension() == ".json") {
    write_text_file_atomic(path_, history.to_json() + "\n");
    return;
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : history.values) keys.insert(k);
  std::string csv = "epoch";
  for (const auto& k : keys) {
    csv += ',';
    csv += k;
  }
  csv += ",epoch_seconds\n";
  for (std::size_t i = 0; i < history.epochs.size(); ++i) {
    csv += std::to_string(history.epochs[i]);
    for (const auto& k : keys) {
      const auto& series = history.values.at(k);
      csv += ',';
      if (i < series.size()) csv += json::number(series[i]);
    }
    csv += ',';
    csv += json::number(history.epoch_seconds[i]);
    csv += '\n';
  }
  write_text_file_atomic(path_, csv);
}

// ---- LearningRateScheduler ----

LearningRateScheduler::LearningRateScheduler(std::function<double(int, double)> schedule)
    : every_(Every::Epoch) {
  PETAL_CHECK(schedule != nullptr, ValueError, "LearningRateScheduler: null schedule");
  schedule_ = [schedule = std::move(schedule)](std::int64_t epoch, double lr) {
    return schedule(static_cast<int>(epoch), lr);
  };
}

LearningRateScheduler::LearningRateScheduler(std::function<double(std::int64_t, double)> schedule, Every every)
    : schedule_(std::move(schedule)), every_(every) {
  PETAL_CHECK(schedule_ != nullptr, ValueError, "LearningRateScheduler: null schedule");
}

void LearningRateScheduler::on_epoch_begin(Trainer& trainer, int epoch) {
  if (every_ != Every::Epoch) return;
  Optimizer& opt = trainer.optimizer();
  opt.set_learning_rate(schedule_(epoch, opt.learning_rate()));
}

void LearningRateScheduler::on_batch_begin(Trainer& trainer, int, std::int64_t) {
  if (every_ != Every::Batch) return;
  Optimizer& opt = trainer.optimizer();
  opt.set_learning_rate(schedule_(opt.iterations(), opt.learning_rate()));
}

// ---- ReduceLROnPlateau ----

ReduceLROnPlateau::ReduceLROnPlateau(Options options) : options_(std::move(options)) {
  PETAL_CHECK(options_.factor >= 0.0 && options_.factor < 1.0, ValueError,
              "ReduceLROnPlateau: factor must be in [0, 1) (it multiplies the rate), got ", options_.factor);
  PETAL_CHECK(options_.patience >= 0 && options_.cooldown >= 0 && options_.min_delta >= 0 && options_.min_lr >= 0,
              ValueError, "ReduceLROnPlateau: patience, cooldown, min_delta and min_lr must be non-negative");
  maximize_ = maximizes(options_.mode, options_.monitor);
  reset();
}

void ReduceLROnPlateau::on_train_begin(Trainer&) { reset(); }

void ReduceLROnPlateau::reset() {
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  wait_ = cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) {
  const double current = monitored(logs, options_.monitor, "ReduceLROnPlateau");
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  const bool improved =
      maximize_ ? current > best_ + options_.min_delta : current < best_ - options_.min_delta;
  if (improved) {
    best_ = current;
    wait_ = 0;
    return;
  }
  if (cooldown_counter_ > 0 || ++wait_ < options_.patience) return;
  Optimizer& opt = trainer.optimizer();
  PETAL_CHECK(opt.schedule() == nullptr, ValueError,
              "ReduceLROnPlateau: the optimizer's learning rate follows a schedule and cannot be set");
  const double old_lr = opt.learning_rate();
  if (!(old_lr > static_cast<double>(static_cast<float>(options_.min_lr)))) return;
  const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
  opt.set_learning_rate(new_lr);
  if (options_.verbose && trainer.progress())
    trainer.progress()->note(str_cat("Epoch ", epoch + 1, ": ReduceLROnPlateau reducing learning rate to ", new_lr, "."));
  cooldown_counter_ = options_.cooldown;
  wait_ = 0;
}

}  // namespace petal::nn
