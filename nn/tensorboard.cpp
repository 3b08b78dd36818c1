#include "nn/tensorboard.hpp"

#include <string>

#include "core/error.hpp"
#include "data/event_file.hpp"

namespace petal::nn {

TensorBoard::TensorBoard(std::filesystem::path log_dir, Options options)
    : log_dir_(std::move(log_dir)), options_(options) {
  PETAL_CHECK(!log_dir_.empty(), ValueError, "TensorBoard: log_dir is empty");
  PETAL_CHECK(options_.update_freq >= 0, ValueError, "TensorBoard: update_freq must be 0 (per epoch) or positive, got ",
              options_.update_freq);
}

TensorBoard::~TensorBoard() = default;

std::filesystem::path TensorBoard::train_file() const { return train_path_; }
std::filesystem::path TensorBoard::validation_file() const { return validation_path_; }

void TensorBoard::on_train_begin(Trainer&) {
  validation_.reset();
  validation_path_.clear();
  train_ = std::make_unique<data::EventFileWriter>(log_dir_ / "train");
  train_path_ = train_->path();
}

void TensorBoard::on_batch_end(Trainer& trainer, int, std::int64_t, const Logs& logs) {
  if (options_.update_freq <= 0 || !train_) return;
  const std::int64_t step = trainer.optimizer().iterations();
  if (step % options_.update_freq != 0) return;
  for (const auto& [name, value] : logs) train_->add_scalar("batch_" + name, value, step);
}

void TensorBoard::on_epoch_end(Trainer& trainer, int epoch, const Logs& logs) {
  if (!train_) on_train_begin(trainer);
  bool has_lr = false;
  for (const auto& [name, value] : logs) {
    if (name.rfind("val_", 0) == 0) continue;
    if (name == "lr") {
      has_lr = true;
      continue;  // written as Keras 3's "learning_rate" below
    }
    train_->add_scalar("epoch_" + name, value, epoch);
  }
  const auto lr = logs.find("lr");
  train_->add_scalar("epoch_learning_rate", has_lr ? lr->second : trainer.optimizer().learning_rate(), epoch);

  bool has_validation = false;
  for (const auto& [name, value] : logs) has_validation = has_validation || name.rfind("val_", 0) == 0;
  if (!has_validation) return;
  if (!validation_) {
    validation_ = std::make_unique<data::EventFileWriter>(log_dir_ / "validation");
    validation_path_ = validation_->path();
  }
  const std::int64_t iterations = trainer.optimizer().iterations();
  for (const auto& [name, value] : logs) {
    if (name.rfind("val_", 0) != 0) continue;
    const std::string stripped = name.substr(4);
    validation_->add_scalar("epoch_" + stripped, value, epoch);
    validation_->add_scalar("evaluation_" + stripped + "_vs_iterations", value, iterations);
  }
}

void TensorBoard::on_train_end(Trainer&, const History&) {
  if (train_) train_->close();
  if (validation_) validation_->close();
  train_.reset();
  validation_.reset();
}

}  // namespace petal::nn
