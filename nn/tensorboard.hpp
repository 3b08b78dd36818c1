// Keras's TensorBoard callback: TensorFlow event files (data/event_file.hpp)
// that `tensorboard --logdir LOG_DIR` displays, in Keras's layout:
//
//   LOG_DIR/train/events.out.tfevents.<seconds>.<host>       training figures
//   LOG_DIR/validation/events.out.tfevents.<seconds>.<host>  validation figures
//
// Tags follow Keras 3 (keras/src/callbacks/tensorboard.py):
//   - at each epoch's end, step = the 0-based epoch: every training figure as
//     "epoch_<name>" ("epoch_loss", "epoch_accuracy", ...) plus
//     "epoch_learning_rate" (petal's "lr" log) in train/; every val_<name> as
//     "epoch_<name>" (prefix stripped) in validation/, and
//     "evaluation_<name>_vs_iterations" there at step = optimizer iterations;
//   - with update_freq = N > 0, every N-th training step also writes its
//     running figures as "batch_<name>" in train/, at step = optimizer
//     iterations after the step (1, 2, ... in a fresh run, as Keras's global
//     batch counter; continuing across resumed runs).
// Each fit() starts new files (the validation one when validation figures
// first come); every event is flushed at once, so a running TensorBoard
// follows the training. Values are stored as float32, as tf.summary does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "nn/trainer.hpp"

namespace petal::data {
class EventFileWriter;
}

namespace petal::nn {

class TensorBoard : public Callback {
 public:
  struct Options {
    // 0: per epoch only (Keras's update_freq="epoch"); N > 0: also every N steps.
    std::int64_t update_freq = 0;
  };
  TensorBoard(std::filesystem::path log_dir, Options options);
  explicit TensorBoard(std::filesystem::path log_dir) : TensorBoard(std::move(log_dir), Options{}) {}
  ~TensorBoard() override;

  void on_train_begin(Trainer& trainer) override;
  void on_batch_end(Trainer& trainer, int epoch, std::int64_t step, const Logs& logs) override;
  void on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) override;
  void on_train_end(Trainer& trainer, const History& history) override;

  const std::filesystem::path& log_dir() const { return log_dir_; }
  // The files of the current (or last) fit; empty before they exist.
  std::filesystem::path train_file() const;
  std::filesystem::path validation_file() const;

 private:
  std::filesystem::path log_dir_;
  Options options_;
  std::unique_ptr<data::EventFileWriter> train_, validation_;
  std::filesystem::path train_path_, validation_path_;
};

}  // namespace petal::nn
