// Keras's compile/fit/evaluate/predict for a Module:
//
//   Trainer trainer(model);
//   trainer.compile(std::make_shared<Adam>(), Loss::categorical_crossentropy());
//   History h = trainer.fit(train, {.epochs = 10, .validation = &val});
//
// fit() puts the model in training mode (frozen BatchNormalization layers still
// run in inference mode, see conv_layers.hpp), updates only trainable
// parameters, and by default stops at once on a NaN or infinite loss
// (Keras's TerminateOnNaN), recording why in History::stop_reason.
//
// Devices: the model's device (Module::to) decides where training runs. Each
// batch is copied there as it comes from the source (a source that allocates
// pinned host memory, Tensor::empty_pinned, gets faster copies); the loss
// value and, for the metrics, the [batch, classes] outputs come back to the
// host, one small copy each per batch. predict() returns host tensors.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "nn/batch_source.hpp"
#include "nn/history.hpp"
#include "nn/losses.hpp"
#include "nn/metrics.hpp"
#include "nn/module.hpp"
#include "nn/optimizers.hpp"
#include "nn/progress.hpp"

namespace petal::nn {

class Trainer;

// Hooks into fit(). Set trainer.stop_training to end after the current epoch.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Trainer&) {}
  virtual void on_epoch_begin(Trainer&, int /*epoch*/) {}
  // Before each training batch's step (once the source has given the batch);
  // step counts batches from 0 within the epoch.
  virtual void on_batch_begin(Trainer&, int /*epoch*/, std::int64_t /*step*/) {}
  virtual void on_batch_end(Trainer&, int /*epoch*/, std::int64_t /*step*/, const Logs&) {}
  virtual void on_epoch_end(Trainer&, int /*epoch*/, const Logs&) {}
  virtual void on_train_end(Trainer&, const History&) {}
};

struct FitOptions {
  int epochs = 1;
  int initial_epoch = 0;               // epochs already done (resuming a checkpoint)
  std::int64_t steps_per_epoch = -1;   // -1: one pass of the source
  BatchSource* validation = nullptr;   // evaluated after every epoch
  std::int64_t validation_steps = -1;  // -1: one pass
  std::vector<std::shared_ptr<Callback>> callbacks = {};
  Verbosity verbose = Verbosity::Auto;
  std::ostream* out = nullptr;  // progress stream; standard output when null
  bool terminate_on_nan = true;
};

// Models with several inputs or outputs (a functional nn::Model) train on
// named batches (Batch::inputs / Batch::targets, e.g. from
// nn::FeatureBatchSource::named): each Input layer is fed the batch input of
// its name, each output is compared with the target named after its layer,
// and the loss is the sum over the outputs of the compiled loss (one loss for
// all outputs, Keras's loss weights all 1; sample weights apply to each).
// Logs then hold "loss" (the sum) and "<output>_loss" per output; compiled
// metrics are not computed for several outputs. A softmax output gives the
// loss its probabilities (no logits fusion) when there are several outputs.
// predict() needs a single output. A single-input, single-output Model
// accepts both plain (x, y) and named batches.
class Trainer {
 public:
  explicit Trainer(std::shared_ptr<Module> model);

  // loss: a Loss (Loss::mean_squared_error(), Loss::parse("mse"), any callable
  // (output, target) -> ag::Variable, see losses.hpp). metrics, by Keras name
  // (see make_metric): "accuracy" (or "acc"), "binary_accuracy", "categorical_accuracy",
  // "sparse_categorical_accuracy", "top_k_categorical_accuracy",
  // "sparse_top_k_categorical_accuracy", "precision", "recall", "auc",
  // "mae"/"mean_absolute_error", "mse"/"mean_squared_error"; each is logged
  // under its name ("acc" as "accuracy"), val_ prefixed for validation.
  // "accuracy" follows the targets like Keras: binary accuracy (threshold 0.5)
  // for a binary cross-entropy loss or a single output per sample, else the
  // arg-max accuracy against one-hot or index targets. Metrics see the model's
  // output (probabilities for a softmax model, also when the loss is fused);
  // sample weights (Batch::sample_weight) weight the loss, not the metrics.
  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<std::string> metrics = {"accuracy"});

  History fit(BatchSource& train, const FitOptions& options = {});
  // {"loss": mean loss, "accuracy": ..., other metrics} over `steps` batches (-1: one pass).
  Logs evaluate(BatchSource& data, std::int64_t steps = -1);
  // The model's outputs (probabilities for a softmax model), rows concatenated.
  Tensor predict(BatchSource& data, std::int64_t steps = -1);
  Tensor predict(const Tensor& x, std::int64_t batch_size = 32);
  // Outputs and the source's targets, row for row (confusion matrices).
  struct Predictions {
    Tensor outputs;
    Tensor targets;
  };
  Predictions predict_with_targets(BatchSource& data, std::int64_t steps = -1);

  // One optimisation step on a batch; returns the batch's mean loss and, when
  // asked, the model's output (logits when the loss is fused) on the model's device.
  double train_step(const Batch& batch, Tensor* output = nullptr);

  Module& model() { return *model_; }
  const std::shared_ptr<Module>& model_ptr() const { return model_; }
  Optimizer& optimizer();
  const Loss& loss() const { return loss_; }
  ProgressPrinter* progress() { return progress_; }
  const History& history() const { return history_; }

  bool stop_training = false;

 private:
  // Forward pass with the fused loss when possible; returns (loss, output).
  std::pair<ag::Variable, ag::Variable> forward_loss(const Batch& batch);
  // The same through the named inputs and targets; per_output gets each output's loss.
  std::pair<ag::Variable, ag::Variable> forward_loss_named(const Batch& batch, std::vector<double>* per_output);
  std::vector<ag::Variable> named_inputs(const Batch& batch) const;
  // The target metrics compare with: the single output's named target, else y.
  Tensor metric_target(const Batch& batch) const;
  bool named(const Batch& batch) const { return multi_io_ || !batch.inputs.empty() || !batch.targets.empty(); }
  void check_compiled(const char* op) const;
  bool fused() const;
  // Fresh metric objects, with their log keys, for one epoch or evaluation.
  std::vector<std::pair<std::string, std::unique_ptr<Metric>>> make_metrics() const;
  // Updates the metrics with a batch's output as forward_loss returns it.
  void update_metrics(std::vector<std::pair<std::string, std::unique_ptr<Metric>>>& metrics, const Tensor& output,
                      const Tensor& target) const;

  std::shared_ptr<Module> model_;
  // A functional Model: the names of its Input layers and output layers.
  bool functional_ = false;
  bool multi_io_ = false;  // several inputs or outputs
  std::vector<std::string> input_names_, output_names_;
  std::vector<double> last_output_losses_;  // per output, of the last train_step (multi-output)
  std::shared_ptr<Optimizer> optimizer_;
  Loss loss_;
  std::vector<std::string> metrics_;  // as given to compile
  bool metrics_need_probabilities_ = false;
  bool compiled_ = false;
  History history_;
  ProgressPrinter* progress_ = nullptr;
};

}  // namespace petal::nn
