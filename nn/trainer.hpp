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

#include <initializer_list>
#include <iosfwd>
#include <map>
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
#include "nn/replica_context.hpp"

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
// and the loss is sum_j loss_weight_j * loss_j(output_j, target_j) (Keras's
// loss dict and loss_weights, CompileOptions; sample weights apply to each).
// Logs then hold "loss" (that sum), "<output>_loss" per output (unweighted)
// and "<output>_<metric>" for each output's metrics, Keras 3's keys. A softmax
// output gives the loss its probabilities (no logits fusion) when there are
// several outputs. predict() needs a single output. A single-input,
// single-output Model accepts both plain (x, y) and named batches.
//
// Metrics by name (see make_metric): "accuracy" (or "acc"), "binary_accuracy",
// "categorical_accuracy", "sparse_categorical_accuracy",
// "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
// "precision", "recall", "auc", "mae"/"mean_absolute_error",
// "mse"/"mean_squared_error"; each is logged under its name ("acc" as
// "accuracy"), val_ prefixed for validation. "accuracy" follows the targets
// like Keras: binary accuracy (threshold 0.5) for a binary cross-entropy loss
// or a single output per sample, else the arg-max accuracy against one-hot or
// index targets. Metrics see the model's output (probabilities for a softmax
// or sigmoid model, also when the loss is fused). `metrics` ignore the
// batch's sample weights; `weighted_metrics` apply them (Keras's rule; a name
// in both lists logs its weighted form as "weighted_<name>"). Like Keras,
// CompileOptions has no default metrics; compile(optimizer, loss) without
// metrics gives a single-output model "accuracy" (petal's default for the
// lab's classifiers) and a model with several outputs none.
struct CompileOptions {
  std::vector<std::string> metrics = {};
  std::vector<std::string> weighted_metrics = {};
  // Keyed by output layer name (functional models; Keras's dicts). An output
  // not named takes the compiled loss, weight 1 and the lists above; with
  // several outputs those lists apply to every output (Keras 2's rule; Keras 3
  // asks for a dict instead).
  std::map<std::string, Loss> output_losses = {};
  std::map<std::string, double> loss_weights = {};
  std::map<std::string, std::vector<std::string>> output_metrics = {};
};
class Trainer {
 public:
  explicit Trainer(std::shared_ptr<Module> model);

  // loss: a Loss (Loss::mean_squared_error(), Loss::parse("mse"), any callable
  // (output, target) -> ag::Variable, see losses.hpp); metrics and the rest
  // as CompileOptions above says.
  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, CompileOptions options);
  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss);
  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<std::string> metrics);
  // compile(optimizer, loss, {}) and compile(optimizer, loss, {"mae"}) name metrics.
  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::initializer_list<std::string> metrics) {
    compile(std::move(optimizer), std::move(loss), std::vector<std::string>(metrics));
  }

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
  // The compiled loss (of the first output when each output has its own).
  const Loss& loss() const { return losses_.at(0); }
  ProgressPrinter* progress() { return progress_; }
  const History& history() const { return history_; }

  bool stop_training = false;

  // Data-parallel training (distributed/data_parallel.hpp sets it): each
  // batch is this replica's share of a global batch; the loss, gradients and
  // metrics become the global batch's; validation figures cover every
  // replica's share. Per-step progress shows the global loss and this
  // replica's running metrics; epoch logs are global. Null: one process.
  void set_replica_context(std::shared_ptr<ReplicaContext> replicas);
  const std::shared_ptr<ReplicaContext>& replica_context() const { return replicas_; }

 private:
  // A forward pass: the weighted total loss, the outputs (logits where the
  // loss is fused) and each output's own loss (several outputs).
  struct Forward {
    ag::Variable loss;
    std::vector<ag::Variable> outputs;
    std::vector<double> output_losses;
  };
  // A training step's figures, on the host side of the model's device.
  struct StepResult {
    double loss = 0.0;
    double samples = 0.0;  // of the global batch the loss averages
    std::vector<Tensor> outputs;
    std::vector<double> output_losses;
  };
  struct MetricSpec {
    std::string key;   // in the logs
    std::string name;  // for make_metric
    std::size_t output = 0;
    bool weighted = false;
  };
  struct LiveMetric {
    const MetricSpec* spec;
    std::unique_ptr<Metric> metric;
  };
  using Metrics = std::vector<LiveMetric>;

  // Forward pass with the fused loss when possible.
  Forward forward_loss(const Batch& batch);
  // The same through the named inputs and targets.
  Forward forward_loss_named(const Batch& batch);
  StepResult run_train_step(const Batch& batch);
  std::vector<ag::Variable> named_inputs(const Batch& batch) const;
  // The targets metrics compare with, per output: named targets, else y.
  std::vector<Tensor> metric_targets(const Batch& batch) const;
  bool named(const Batch& batch) const { return multi_io_ || !batch.inputs.empty() || !batch.targets.empty(); }
  void check_compiled(const char* op) const;
  // The activation the single output's loss is fused with (Linear: none).
  ActivationKind fused_activation() const;
  // Fresh metric objects for one epoch or evaluation.
  Metrics make_metrics() const;
  // Updates the metrics with a batch's outputs as forward_loss returns them.
  void update_metrics(Metrics& metrics, const std::vector<Tensor>& outputs, const Batch& batch) const;
  std::size_t output_count() const { return output_names_.empty() ? 1 : output_names_.size(); }
  // Adds the metrics' totals across replicas.
  void reduce_metrics(Metrics& metrics) const;

  std::shared_ptr<Module> model_;
  // A functional Model: the names of its Input layers and output layers.
  bool functional_ = false;
  bool multi_io_ = false;  // several inputs or outputs
  std::vector<std::string> input_names_, output_names_;
  std::shared_ptr<Optimizer> optimizer_;
  std::vector<Loss> losses_ = {Loss()};  // per output
  std::vector<double> loss_weights_ = {1.0};
  std::vector<MetricSpec> metric_specs_;
  bool metrics_need_probabilities_ = false;
  std::shared_ptr<ReplicaContext> replicas_;
  bool compiled_ = false;
  History history_;
  ProgressPrinter* progress_ = nullptr;
};

}  // namespace petal::nn
