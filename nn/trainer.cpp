#include "nn/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <span>

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/constant_weights.hpp"
#include "nn/metrics.hpp"
#include "nn/model.hpp"

namespace petal::nn {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Tensor concat_rows(const std::vector<Tensor>& parts) {
  PETAL_CHECK(!parts.empty(), ValueError, "predict: the data source gave no batches");
  Shape shape = parts.front().shape();
  std::int64_t rows = 0;
  for (const Tensor& p : parts) rows += p.size(0);
  shape[0] = rows;
  Tensor out = Tensor::empty(shape, parts.front().dtype());
  char* dst = static_cast<char*>(out.raw_data());
  for (const Tensor& p : parts) {
    Tensor c = p.contiguous();
    std::memcpy(dst, c.raw_data(), c.nbytes());
    dst += c.nbytes();
  }
  return out;
}

// Restores the model's training flag when a scope ends (evaluate inside fit).
class ModeGuard {
 public:
  ModeGuard(Module& m, bool training) : m_(m), previous_(m.training()) { m_.set_training(training); }
  ~ModeGuard() { m_.set_training(previous_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  Module& m_;
  bool previous_;
};

// Keras's "accuracy": binary accuracy for a binary cross-entropy loss or one
// output per sample, else arg-max accuracy (one-hot or index targets); decided
// on the first batch.
class FollowingAccuracy : public Metric {
 public:
  explicit FollowingAccuracy(bool binary_loss) : binary_loss_(binary_loss) {}
  void accumulate(const Tensor& output, const Tensor& target, std::span<const double> weights) override {
    if (!chosen_) {
      const bool binary = binary_loss_ || (output.dim() >= 1 && output.size(output.dim() - 1) == 1) || output.dim() == 0;
      chosen_ = binary ? std::unique_ptr<Metric>(std::make_unique<BinaryAccuracy>())
                       : std::unique_ptr<Metric>(std::make_unique<Accuracy>());
    }
    chosen_->accumulate(output, target, weights);
  }
  double result() const override { return chosen_ ? chosen_->result() : 0.0; }
  void reset() override { chosen_.reset(); }
  // {correct, total} for either choice; a replica that saw no batch keeps zeros.
  std::vector<double> totals() const override { return chosen_ ? chosen_->totals() : std::vector<double>{0.0, 0.0}; }
  void set_totals(std::span<const double> t) override {
    check_totals(t, 2);
    if (chosen_) chosen_->set_totals(t);
  }

 private:
  bool binary_loss_;
  std::unique_ptr<Metric> chosen_;
};

bool is_accuracy(const std::string& m) { return m == "accuracy" || m == "acc"; }

// Metrics that read arg-max or ranks only: logits serve as well as probabilities.
bool ranks_only(const std::string& m) {
  return is_accuracy(m) || m == "categorical_accuracy" || m == "sparse_categorical_accuracy" ||
         m == "top_k_categorical_accuracy" || m == "sparse_top_k_categorical_accuracy";
}

}  // namespace

Trainer::Trainer(std::shared_ptr<Module> model) : model_(std::move(model)) {
  PETAL_CHECK(model_ != nullptr, ValueError, "Trainer: null model");
  // A functional Model takes named batches (several inputs or outputs, see
  // trainer.hpp); any other module with several inputs or outputs trains in a
  // custom loop on the tape (docs/guide.md).
  if (const auto* m = dynamic_cast<const Model*>(model_.get())) {
    functional_ = true;
    for (const SymbolicTensor& in : m->inputs()) input_names_.push_back(in.layer().name());
    for (const SymbolicTensor& out : m->outputs()) output_names_.push_back(out.layer().name());
    multi_io_ = input_names_.size() > 1 || output_names_.size() > 1;
  } else if (model_->built()) {
    PETAL_CHECK(model_->input_shapes().size() == 1 && model_->output_shapes().size() <= 1, ValueError,
                "Trainer: model \"", model_->name(), "\" has ", model_->input_shapes().size(), " inputs and ",
                model_->output_shapes().size(),
                " outputs; Trainer takes one of each unless it is a functional nn::Model (train it with a "
                "custom loop: docs/guide.md)");
  }
}

void Trainer::compile(std::shared_ptr<Optimizer> optimizer, Loss loss) {
  CompileOptions options;
  if (output_count() == 1) options.metrics = {"accuracy"};
  compile(std::move(optimizer), std::move(loss), std::move(options));
}

void Trainer::compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<std::string> metrics) {
  CompileOptions options;
  options.metrics = std::move(metrics);
  compile(std::move(optimizer), std::move(loss), std::move(options));
}

void Trainer::compile(std::shared_ptr<Optimizer> optimizer, Loss loss, CompileOptions options) {
  PETAL_CHECK(optimizer != nullptr, ValueError, "compile: null optimizer");
  const std::size_t outputs = output_count();
  // Per-output settings name output layers; anything else is a typo.
  auto check_keys = [&](const auto& map, const char* what) {
    for (const auto& entry : map) {
      const bool known = std::find(output_names_.begin(), output_names_.end(), entry.first) != output_names_.end();
      if (known) continue;
      std::string have;
      for (const std::string& n : output_names_) have += (have.empty() ? "" : ", ") + n;
      throw ValueError(str_cat("compile: ", what, " names \"", entry.first, "\", which is not an output layer of \"",
                               model_->name(), "\"",
                               functional_ ? str_cat(" (outputs: ", have, ")") : std::string(" (not a functional Model)")));
    }
  };
  check_keys(options.output_losses, "output_losses");
  check_keys(options.loss_weights, "loss_weights");
  check_keys(options.output_metrics, "output_metrics");

  std::vector<Loss> losses(outputs, loss);
  std::vector<double> weights(outputs, 1.0);
  std::vector<MetricSpec> specs;
  bool need_probabilities = false;
  for (std::size_t j = 0; j < outputs; ++j) {
    const std::string output = output_names_.empty() ? std::string() : output_names_[j];
    if (auto it = options.output_losses.find(output); it != options.output_losses.end()) losses[j] = it->second;
    if (auto it = options.loss_weights.find(output); it != options.loss_weights.end()) {
      PETAL_CHECK(std::isfinite(it->second), ValueError, "compile: loss weight of \"", output, "\" is ", it->second);
      weights[j] = it->second;
    }
    auto listed = options.output_metrics.find(output);
    const std::vector<std::string>& plain = listed != options.output_metrics.end() ? listed->second : options.metrics;
    // Keys as Keras 3 logs them: "<output>_" before each with several outputs.
    const std::string prefix = outputs > 1 ? output + "_" : std::string();
    std::vector<std::string> keys;
    for (int weighted = 0; weighted < 2; ++weighted) {
      for (const std::string& m : weighted ? options.weighted_metrics : plain) {
        try {
          make_metric(m);
        } catch (const ValueError& e) {
          throw ValueError(str_cat("compile: ", e.what()));
        }
        std::string key = m == "acc" ? "accuracy" : m;
        if (weighted && std::find(plain.begin(), plain.end(), m) != plain.end()) key = "weighted_" + key;
        PETAL_CHECK(key != "loss" && std::find(keys.begin(), keys.end(), key) == keys.end(), ValueError,
                    "compile: metric \"", m, "\" given twice", prefix.empty() ? "" : " for output \"", output,
                    prefix.empty() ? "" : "\"");
        keys.push_back(key);
        specs.push_back({prefix + key, m, j, weighted != 0});
        need_probabilities = need_probabilities || !ranks_only(m);
      }
    }
  }
  optimizer_ = std::move(optimizer);
  losses_ = std::move(losses);
  loss_weights_ = std::move(weights);
  metric_specs_ = std::move(specs);
  metrics_need_probabilities_ = need_probabilities;
  compiled_ = true;
}

ActivationKind Trainer::fused_activation() const {
  const ActivationKind a = model_->logits_activation();
  return output_count() == 1 && losses_[0].fuses_with(a) ? a : ActivationKind::Linear;
}

Trainer::Metrics Trainer::make_metrics() const {
  Metrics out;
  for (const MetricSpec& spec : metric_specs_) {
    std::unique_ptr<Metric> metric =
        is_accuracy(spec.name)
            ? std::make_unique<FollowingAccuracy>(losses_[spec.output].kind == LossKind::BinaryCrossentropy)
            : make_metric(spec.name);
    out.push_back({&spec, std::move(metric)});
  }
  return out;
}

void Trainer::update_metrics(Metrics& metrics, const std::vector<Tensor>& outputs, const Batch& batch) const {
  if (metrics.empty()) return;
  // Metrics read the outputs on the host: one [batch, ...] copy per output. A
  // fused loss left logits: the thresholded metrics get the probabilities.
  std::vector<Tensor> host(outputs.size());
  const ActivationKind fused = fused_activation();
  for (std::size_t j = 0; j < outputs.size(); ++j) {
    Tensor out = outputs[j];
    if (!out.defined()) continue;
    if (metrics_need_probabilities_ && fused != ActivationKind::Linear)
      out = apply_activation(ag::Variable(out, false), fused).data();
    host[j] = out.to(Device::cpu());
  }
  const std::vector<Tensor> targets = metric_targets(batch);
  for (LiveMetric& m : metrics) {
    const std::size_t j = m.spec->output;
    if (j >= host.size() || !host[j].defined()) continue;
    m.metric->update(host[j], targets.at(j), m.spec->weighted ? batch.sample_weight : Tensor());
  }
}

void Trainer::set_replica_context(std::shared_ptr<ReplicaContext> replicas) { replicas_ = std::move(replicas); }

void Trainer::reduce_metrics(Metrics& metrics) const {
  std::vector<double> sums;
  for (const LiveMetric& m : metrics) {
    const std::vector<double> t = m.metric->totals();
    sums.insert(sums.end(), t.begin(), t.end());
  }
  replicas_->sum(sums);
  std::size_t at = 0;
  for (LiveMetric& m : metrics) {
    const std::size_t n = m.metric->totals().size();
    m.metric->set_totals(std::span<const double>(sums).subspan(at, n));
    at += n;
  }
}

Optimizer& Trainer::optimizer() {
  check_compiled("optimizer");
  return *optimizer_;
}

void Trainer::check_compiled(const char* op) const {
  PETAL_CHECK(compiled_, ValueError, op, ": call compile() first");
}

// fit, evaluate and predict take float inputs only: uint8 images are the
// usual mistake, so the message says how to convert them.
static void check_float_inputs(const Module& model, const Tensor& x) {
  PETAL_CHECK(x.defined() && is_floating(x.dtype()), DTypeError, "model \"", model.name(),
              "\": inputs must be float tensors, got ", x.defined() ? dtype_name(x.dtype()) : "an undefined tensor",
              " (convert images to float32 first: data::Dataset::output_float, or Tensor::to(DType::Float32))");
}

std::vector<ag::Variable> Trainer::named_inputs(const Batch& batch) const {
  PETAL_CHECK(functional_, ValueError, "model \"", model_->name(),
              "\": named batch inputs/targets need a functional nn::Model");
  const Device device = model_->device();
  std::vector<ag::Variable> xs;
  for (const std::string& name : input_names_) {
    Tensor x;
    if (!batch.inputs.empty()) {
      auto it = batch.inputs.find(name);
      if (it == batch.inputs.end()) {
        std::string have;
        for (const auto& [k, t] : batch.inputs) have += (have.empty() ? "" : ", ") + k;
        throw ValueError(str_cat("model \"", model_->name(), "\": the batch has no input \"", name,
                                 "\" for the Input layer of that name (batch inputs: ", have, ")"));
      }
      x = it->second;
    } else {
      PETAL_CHECK(input_names_.size() == 1, ValueError, "model \"", model_->name(), "\" has ", input_names_.size(),
                  " inputs: give the batch named inputs (Batch::inputs)");
      x = batch.x;
    }
    check_float_inputs(*model_, x);
    xs.emplace_back(x.to(device), false);
  }
  return xs;
}

std::vector<Tensor> Trainer::metric_targets(const Batch& batch) const {
  if (batch.targets.empty() || output_names_.empty()) return {batch.y};
  std::vector<Tensor> targets;
  for (const std::string& name : output_names_) {
    auto it = batch.targets.find(name);
    targets.push_back(it != batch.targets.end() ? it->second : output_names_.size() == 1 ? batch.y : Tensor());
  }
  return targets;
}

Trainer::Forward Trainer::forward_loss_named(const Batch& batch) {
  const Device device = model_->device();
  Forward result;
  result.outputs = (*model_)(named_inputs(batch));
  const std::vector<ag::Variable>& outs = result.outputs;
  PETAL_CHECK(outs.size() == output_names_.size(), ValueError, "model \"", model_->name(), "\": ", outs.size(),
              " outputs for ", output_names_.size(), " output layers");
  const Tensor weight = batch.sample_weight.defined() ? batch.sample_weight.to(device) : Tensor();
  for (std::size_t j = 0; j < outs.size(); ++j) {
    Tensor target;
    if (!batch.targets.empty()) {
      auto it = batch.targets.find(output_names_[j]);
      if (it == batch.targets.end()) {
        std::string have;
        for (const auto& [k, t] : batch.targets) have += (have.empty() ? "" : ", ") + k;
        throw ValueError(str_cat("model \"", model_->name(), "\": the batch has no target \"", output_names_[j],
                                 "\" for the output layer of that name (batch targets: ", have, ")"));
      }
      target = it->second;
    } else {
      PETAL_CHECK(outs.size() == 1, ValueError, "model \"", model_->name(), "\" has ", outs.size(),
                  " outputs: give the batch named targets (Batch::targets)");
      target = batch.y;
    }
    const Loss& loss = losses_[j];
    ag::Variable l = loss(outs[j], target.to(device), weight, loss.from_logits);
    result.output_losses.push_back(l.data().item<double>());
    ag::Variable weighted = loss_weights_[j] == 1.0 ? l : l * loss_weights_[j];
    result.loss = j == 0 ? weighted : result.loss + weighted;
  }
  return result;
}

Trainer::Forward Trainer::forward_loss(const Batch& batch) {
  if (named(batch)) return forward_loss_named(batch);
  check_float_inputs(*model_, batch.x);
  // The batch follows the model (a no-op on the CPU); a source that fills
  // pinned host memory makes this copy a direct DMA.
  const Device device = model_->device();
  ag::Variable x(batch.x.to(device), false);
  // A softmax (sigmoid) output feeds its logits to the fused, stable cross-entropy.
  const bool fused_loss = fused_activation() != ActivationKind::Linear;
  ag::Variable output = fused_loss ? model_->call_logits(x) : (*model_)(x);
  Tensor weight = batch.sample_weight.defined() ? batch.sample_weight.to(device) : Tensor();
  const Loss& loss = losses_[0];
  ag::Variable value = loss(output, batch.y.to(device), weight, fused_loss || loss.from_logits);
  if (loss_weights_[0] != 1.0) value = value * loss_weights_[0];
  return {value, {output}, {}};
}

Trainer::StepResult Trainer::run_train_step(const Batch& batch) {
  check_compiled("train_step");
  model_->zero_grad();
  // Synchronised batch normalization finds the replicas here.
  ReplicaScope replica_scope(replicas_);
  Forward forward = forward_loss(batch);
  StepResult result;
  result.loss = forward.loss.data().item<double>();
  double scale = 1.0;
  if (replicas_) {
    // The global batch's mean loss from each replica's share, and this
    // replica's weight in the global gradient. A non-finite loss anywhere
    // stops every replica at the same step (no replica is left waiting).
    const auto n = static_cast<double>(batch.size());
    std::vector<double> sums = {result.loss * n, n};
    for (double l : forward.output_losses) sums.push_back(l * n);
    replicas_->sum(sums);
    PETAL_CHECK(sums[1] > 0, ValueError, "train_step: the replicas' batches are all empty");
    result.loss = sums[0] / sums[1];
    for (std::size_t j = 0; j < forward.output_losses.size(); ++j) forward.output_losses[j] = sums[2 + j] / sums[1];
    scale = n / sums[1];
    result.samples = sums[1];
  } else {
    result.samples = static_cast<double>(batch.size());
  }
  if (std::isfinite(result.loss)) {
    if (replicas_) replicas_->begin_gradients(model_->trainable_parameters(), scale);
    forward.loss.backward();
    if (replicas_) replicas_->finish_gradients();
    optimizer_->step(model_->trainable_parameters());
  }
  for (const ag::Variable& out : forward.outputs) result.outputs.push_back(out.data());
  result.output_losses = std::move(forward.output_losses);
  return result;
}

double Trainer::train_step(const Batch& batch, Tensor* output) {
  StepResult result = run_train_step(batch);
  if (output) *output = result.outputs.size() == 1 ? result.outputs[0] : Tensor();
  return result.loss;
}

History Trainer::fit(BatchSource& train, const FitOptions& options) {
  check_compiled("fit");
  PETAL_CHECK(options.epochs >= 0 && options.initial_epoch >= 0, ValueError, "fit: epochs must be non-negative");
  history_ = History{};
  stop_training = false;
  ProgressPrinter progress(options.out ? *options.out : std::cout, options.verbose, options.epochs);
  progress_ = &progress;
  struct ResetProgress {
    ProgressPrinter*& p;
    ~ResetProgress() { p = nullptr; }
  } reset_progress{progress_};

  for (auto& cb : options.callbacks) cb->on_train_begin(*this);
  for (int epoch = options.initial_epoch; epoch < options.epochs && !stop_training; ++epoch) {
    for (auto& cb : options.callbacks) cb->on_epoch_begin(*this, epoch);
    double lr = optimizer_->learning_rate();  // logged: the rate of the epoch's first step
    train.begin_epoch(epoch);
    std::int64_t steps = options.steps_per_epoch >= 0 ? options.steps_per_epoch : train.steps_per_epoch();
    progress.epoch_begin(epoch, steps);
    Mean mean_loss;
    std::vector<Mean> output_losses(output_names_.size() > 1 ? output_names_.size() : 0);
    auto metrics = make_metrics();
    Logs logs;
    const auto epoch_start = Clock::now();
    std::int64_t step = 0;
    bool nan_stop = false;
    {
      ModeGuard mode(*model_, true);
      for (; steps < 0 || step < steps; ++step) {
        std::optional<Batch> batch = train.next();
        if (!batch) break;
        for (auto& cb : options.callbacks) cb->on_batch_begin(*this, epoch, step);
        if (step == 0) lr = optimizer_->learning_rate();
        const auto step_start = Clock::now();
        StepResult result = run_train_step(*batch);
        const double value = result.loss;
        history_.train_seconds += seconds_since(step_start);
        const std::int64_t n = batch->size();
        history_.train_samples += n;
        if (options.terminate_on_nan && !std::isfinite(value)) {
          history_.stopped_early = true;
          history_.stop_reason = str_cat("TerminateOnNaN: invalid loss ", value, " at epoch ", epoch + 1, ", step ",
                                         step + 1, "; training stopped");
          nan_stop = true;
          break;
        }
        mean_loss.update(value, result.samples);
        logs["loss"] = mean_loss.result();
        for (std::size_t j = 0; j < output_losses.size() && j < result.output_losses.size(); ++j) {
          output_losses[j].update(result.output_losses[j], result.samples);
          logs[output_names_[j] + "_loss"] = output_losses[j].result();
        }
        update_metrics(metrics, result.outputs, *batch);
        for (const LiveMetric& m : metrics) logs[m.spec->key] = m.metric->result();
        progress.step(step + 1, logs);
        for (auto& cb : options.callbacks) cb->on_batch_end(*this, epoch, step, logs);
      }
    }
    if (nan_stop) {
      std::cerr << (progress.mode() == Verbosity::Bar ? "\n" : "") << history_.stop_reason << "\n";
      stop_training = true;
      break;
    }
    PETAL_CHECK(step > 0, ValueError, "fit: the training source gave no batch in epoch ", epoch + 1);
    if (replicas_) {
      // The step losses are global already; the metrics become the figures
      // over every replica's samples.
      reduce_metrics(metrics);
      for (const LiveMetric& m : metrics) logs[m.spec->key] = m.metric->result();
    }
    if (options.validation) {
      Logs val = evaluate(*options.validation, options.validation_steps);
      for (const auto& [k, v] : val) logs["val_" + k] = v;
    }
    logs["lr"] = lr;
    const double seconds = seconds_since(epoch_start);
    history_.append(epoch, logs, seconds);
    progress.epoch_end(step, seconds, logs);
    for (auto& cb : options.callbacks) cb->on_epoch_end(*this, epoch, logs);
  }
  for (auto& cb : options.callbacks) cb->on_train_end(*this, history_);
  if (stop_training && history_.stop_reason.empty() && !history_.epochs.empty() &&
      history_.epochs.back() + 1 < options.epochs) {
    history_.stopped_early = true;
    history_.stop_reason = str_cat("stopped by a callback after epoch ", history_.epochs.back() + 1);
  }
  return history_;
}

Logs Trainer::evaluate(BatchSource& data, std::int64_t steps) {
  check_compiled("evaluate");
  ag::NoGradGuard no_grad;
  ModeGuard mode(*model_, false);
  data.begin_epoch(0);
  Mean mean_loss;
  std::vector<Mean> output_losses;
  auto metrics = make_metrics();
  // Weights declared constant from the second batch on, as predict does.
  std::optional<ConstantWeights> constant;
  std::int64_t step = 0;
  for (; steps < 0 || step < steps; ++step) {
    std::optional<Batch> batch = data.next();
    if (!batch) break;
    if (step == 1) constant.emplace(*model_);
    Forward forward = forward_loss(*batch);
    const auto n = static_cast<double>(batch->size());
    mean_loss.update(forward.loss.data().item<double>(), n);
    if (output_names_.size() > 1) {
      output_losses.resize(forward.output_losses.size());
      for (std::size_t j = 0; j < forward.output_losses.size(); ++j) output_losses[j].update(forward.output_losses[j], n);
    }
    std::vector<Tensor> outputs;
    for (const ag::Variable& out : forward.outputs) outputs.push_back(out.data());
    update_metrics(metrics, outputs, *batch);
  }
  PETAL_CHECK(step > 0 || replicas_, ValueError, "evaluate: the data source gave no batch");
  if (replicas_) {
    // Every replica evaluated its share: losses and metrics over all of them.
    std::vector<double> sums = mean_loss.totals();
    output_losses.resize(output_names_.size() > 1 ? output_names_.size() : 0);
    for (const Mean& m : output_losses) {
      const std::vector<double> t = m.totals();
      sums.insert(sums.end(), t.begin(), t.end());
    }
    replicas_->sum(sums);
    PETAL_CHECK(sums[1] > 0, ValueError, "evaluate: the data source gave no batch on any replica");
    mean_loss.set_totals(sums[0], sums[1]);
    for (std::size_t j = 0; j < output_losses.size(); ++j) output_losses[j].set_totals(sums[2 + 2 * j], sums[3 + 2 * j]);
    reduce_metrics(metrics);
  }
  Logs logs{{"loss", mean_loss.result()}};
  for (std::size_t j = 0; j < output_losses.size(); ++j) logs[output_names_[j] + "_loss"] = output_losses[j].result();
  for (const LiveMetric& m : metrics) logs[m.spec->key] = m.metric->result();
  return logs;
}

Trainer::Predictions Trainer::predict_with_targets(BatchSource& data, std::int64_t steps) {
  ag::NoGradGuard no_grad;
  ModeGuard mode(*model_, false);
  data.begin_epoch(0);
  std::vector<Tensor> outputs, targets;
  // From the second batch on the weights are declared constant, so GEMMs
  // pack them once (a single batch would pay the packing for nothing).
  std::optional<ConstantWeights> constant;
  for (std::int64_t step = 0; steps < 0 || step < steps; ++step) {
    std::optional<Batch> batch = data.next();
    if (!batch) break;
    if (step == 1) constant.emplace(*model_);
    if (named(*batch)) {
      PETAL_CHECK(output_names_.size() == 1, ValueError, "predict: model \"", model_->name(), "\" has ",
                  output_names_.size(), " outputs; predict returns one (call the model on the tape for several)");
      outputs.push_back((*model_)(named_inputs(*batch)).at(0).data().to(Device::cpu()));
      targets.push_back(metric_targets(*batch).at(0));
      continue;
    }
    check_float_inputs(*model_, batch->x);
    outputs.push_back((*model_)(ag::Variable(batch->x.to(model_->device()), false)).data().to(Device::cpu()));
    targets.push_back(batch->y);
  }
  const bool have_targets =
      std::all_of(targets.begin(), targets.end(), [](const Tensor& t) { return t.defined(); });
  return {concat_rows(outputs), have_targets ? concat_rows(targets) : Tensor()};
}

Tensor Trainer::predict(BatchSource& data, std::int64_t steps) { return predict_with_targets(data, steps).outputs; }

Tensor Trainer::predict(const Tensor& x, std::int64_t batch_size) {
  TensorBatchSource source(x, zeros({x.size(0)}, DType::Int64), batch_size);
  return predict(source);
}

}  // namespace petal::nn
