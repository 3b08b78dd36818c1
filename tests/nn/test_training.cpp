// Trainer end to end: tiny problems that must be learned (XOR, two spirals),
// TerminateOnNaN, progress output, exact resume from a checkpoint, callbacks,
// evaluate/predict and the curves file.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "nn/json.hpp"
#include "nn/nn.hpp"
#include "tests/nn/temp_dir.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() { return test::nn_temp_dir("train"); }

std::shared_ptr<Sequential> mlp(std::int64_t in, std::vector<std::int64_t> hidden, std::int64_t classes,
                                 const char* activation = "relu", double dropout = 0.0) {
  std::vector<std::shared_ptr<Module>> layers{std::make_shared<InputLayer>(Shape{in})};
  for (auto h : hidden) {
    layers.push_back(std::make_shared<Dense>(h, activation));
    if (dropout > 0) layers.push_back(std::make_shared<Dropout>(dropout));
  }
  layers.push_back(std::make_shared<Dense>(classes, "softmax"));
  return std::make_shared<Sequential>(layers);
}

FitOptions quiet(int epochs) {
  FitOptions o;
  o.epochs = epochs;
  o.verbose = Verbosity::Quiet;
  return o;
}

// Two interleaved spirals, n points per class, labels int64.
std::pair<Tensor, Tensor> two_spirals(std::int64_t n) {
  std::vector<float> xs;
  std::vector<std::int64_t> ys;
  for (std::int64_t i = 0; i < n; ++i) {
    const double r = 0.15 + 0.85 * static_cast<double>(i) / static_cast<double>(n);
    const double t = 1.75 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(n);
    for (int c = 0; c < 2; ++c) {
      const double sign = c == 0 ? 1.0 : -1.0;
      xs.push_back(static_cast<float>(sign * r * std::cos(t)));
      xs.push_back(static_cast<float>(sign * r * std::sin(t)));
      ys.push_back(c);
    }
  }
  return {from_vector(xs, {2 * n, 2}), from_vector(ys)};
}

// Yields four batches per epoch; batch `bad` (0-based) has a NaN target, so
// its loss is NaN.
class PoisonedSource : public BatchSource {
 public:
  explicit PoisonedSource(int bad) : bad_(bad) {}
  void begin_epoch(int) override { i_ = 0; }
  std::optional<Batch> next() override {
    if (i_ == 4) return std::nullopt;
    Tensor y = from_vector(std::vector<float>{1, 0, 0, 1}, {2, 2});
    if (i_++ == bad_) y.data<float>()[1] = std::nanf("");
    return Batch{ones({2, 3}), y};
  }
  std::int64_t steps_per_epoch() const override { return 4; }

 private:
  int bad_, i_ = 0;
};

}  // namespace

TEST_CASE("a tiny network learns XOR") {
  reset_layer_names();
  manual_seed(3);
  auto model = mlp(2, {8}, 2, "tanh");
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.05), Loss::sparse_categorical_crossentropy());
  Tensor x = from_vector(std::vector<float>{0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  Tensor y = from_vector(std::vector<std::int64_t>{0, 1, 1, 0});
  TensorBatchSource data(x, y, 4);
  History h = trainer.fit(data, quiet(150));
  CHECK(h["loss"].back() < 0.05);
  CHECK(h["accuracy"].back() == 1.0);
  Tensor probs = trainer.predict(x);
  CHECK(predicted_classes(probs) == std::vector<std::int64_t>{0, 1, 1, 0});
}

TEST_CASE("an MLP learns two spirals (one-hot targets, categorical cross-entropy)") {
  reset_layer_names();
  manual_seed(4);
  auto [x, labels] = two_spirals(100);
  auto model = mlp(2, {64, 64}, 2, "relu");
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::categorical_crossentropy());
  TensorBatchSource data(x, one_hot(labels, 2), 50, /*shuffle=*/true, /*seed=*/1);
  trainer.fit(data, quiet(120));
  TensorBatchSource eval(x, one_hot(labels, 2), 200);
  Logs logs = trainer.evaluate(eval);
  CHECK(logs.at("accuracy") >= 0.97);
}

TEST_CASE("a NaN loss stops fit at once with a message naming epoch and step") {
  reset_layer_names();
  auto model = mlp(3, {4}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::categorical_crossentropy());
  PoisonedSource source(2);
  FitOptions options = quiet(5);
  History h = trainer.fit(source, options);
  CHECK(h.stopped_early);
  CHECK(h.stop_reason.find("epoch 1, step 3") != std::string::npos);
  CHECK(h.epochs.empty());
  for (const auto& w : model->weights()) {
    for (float v : w.variable.data().to_vector<float>()) CHECK(std::isfinite(v));
  }
}

TEST_CASE("progress: one line per epoch off a terminal, a Keras bar on one, nothing when quiet") {
  reset_layer_names();
  auto model = mlp(3, {4}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(), Loss::sparse_categorical_crossentropy());
  TensorBatchSource train(uniform({20, 3}, -1, 1), from_vector(std::vector<std::int64_t>(20, 1)), 8);
  TensorBatchSource val(uniform({6, 3}, -1, 1), from_vector(std::vector<std::int64_t>(6, 0)), 8);

  std::ostringstream lines;
  FitOptions o;
  o.epochs = 3;
  o.validation = &val;
  o.out = &lines;  // not standard output: Auto means one line per epoch
  trainer.fit(train, o);
  std::istringstream in(lines.str());
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  REQUIRE(rows.size() == 3);
  for (int e = 0; e < 3; ++e) {
    INFO(rows[e]);
    CHECK(rows[e].rfind("Epoch " + std::to_string(e + 1) + "/3 - 3/3 - ", 0) == 0);
    CHECK(rows[e].find(" - loss: ") != std::string::npos);
    CHECK(rows[e].find(" - accuracy: ") != std::string::npos);
    CHECK(rows[e].find(" - accuracy: ") < rows[e].find(" - val_loss: "));
    CHECK(rows[e].find(" - val_loss: ") < rows[e].find(" - val_accuracy: "));
    CHECK(rows[e].find(" - val_accuracy: ") != std::string::npos);
  }

  std::ostringstream bar;
  o.out = &bar;
  o.verbose = Verbosity::Bar;
  trainer.fit(train, o);
  const std::string b = bar.str();
  CHECK(b.find("Epoch 1/3\n") != std::string::npos);
  CHECK(b.find("3/3 [==============================] - ") != std::string::npos);
  CHECK(b.find("/step - loss: ") != std::string::npos);

  std::ostringstream none;
  o.out = &none;
  o.verbose = Verbosity::Quiet;
  trainer.fit(train, o);
  CHECK(none.str().empty());
}

TEST_CASE("a run resumed from a checkpoint equals the uninterrupted run bit for bit") {
  const fs::path ckpt = temp_dir() / "resume.safetensors";
  auto [x, y] = two_spirals(40);
  auto run = [&](bool interrupted) {
    reset_layer_names();
    manual_seed(21);
    auto model = mlp(2, {16}, 2, "relu", 0.25);  // dropout draws from default_generator()
    auto adam = std::make_shared<Adam>(0.01);
    Trainer trainer(model);
    trainer.compile(adam, Loss::sparse_categorical_crossentropy());
    TensorBatchSource data(x, y, 16, /*shuffle=*/true, /*seed=*/5);
    if (!interrupted) {
      trainer.fit(data, quiet(4));
      return model;
    }
    trainer.fit(data, quiet(2));
    save_checkpoint(ckpt, *model, *adam, 2);
    // A fresh process: new model, new optimizer, a different generator state.
    reset_layer_names();
    manual_seed(999);
    auto resumed = mlp(2, {16}, 2, "relu", 0.25);
    auto adam2 = std::make_shared<Adam>(0.01);
    Trainer trainer2(resumed);
    trainer2.compile(adam2, Loss::sparse_categorical_crossentropy());
    FitOptions o = quiet(4);
    o.initial_epoch = load_checkpoint(ckpt, *resumed, *adam2);
    CHECK(o.initial_epoch == 2);
    History h = trainer2.fit(data, o);
    CHECK(h.epochs == std::vector<int>{2, 3});
    return resumed;
  };
  auto a = run(false);
  auto b = run(true);
  auto wa = a->weights(), wb = b->weights();
  REQUIRE(wa.size() == wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) {
    INFO(wa[i].name);
    CHECK(wa[i].variable.data().to_vector<float>() == wb[i].variable.data().to_vector<float>());
  }
}

TEST_CASE("EarlyStopping stops after `patience` epochs without improvement and restores the best weights") {
  reset_layer_names();
  auto model = mlp(3, {4}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(), Loss::sparse_categorical_crossentropy());
  EarlyStopping es({.monitor = "val_loss", .min_delta = 0.0, .patience = 1, .mode = MonitorMode::Auto,
                    .restore_best_weights = true});
  es.on_train_begin(trainer);
  const auto best = model->weights()[0].variable.data().to_vector<float>();
  History h;
  for (int epoch = 0; epoch < 3; ++epoch) {
    h.append(epoch, {{"val_loss", 1.0 + epoch}}, 0.0);
    es.on_epoch_end(trainer, epoch, {{"val_loss", 1.0 + epoch}});
    model->weights()[0].variable.mutable_data().fill_(static_cast<double>(epoch + 1));
    CHECK(trainer.stop_training == (epoch == 2));
  }
  es.on_train_end(trainer, h);
  CHECK(es.best_epoch() == 0);
  CHECK(model->weights()[0].variable.data().to_vector<float>() == best);
  CHECK_THROWS_AS(es.on_epoch_end(trainer, 3, {{"loss", 1.0}}), ValueError);
}

TEST_CASE("callbacks in fit: history loggers, checkpoints, learning-rate scheduler; curves and evaluate") {
  const fs::path dir = temp_dir();
  reset_layer_names();
  manual_seed(8);
  auto [x, y] = two_spirals(30);
  auto model = mlp(2, {8}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy());
  TensorBatchSource train(x, y, 20, true, 3), val(x, y, 25);
  FitOptions o = quiet(3);
  o.validation = &val;
  o.callbacks = {std::make_shared<HistoryLogger>(dir / "history.csv"),
                 std::make_shared<HistoryLogger>(dir / "history.json"),
                 std::make_shared<ModelCheckpoint>(dir / "weights_{epoch}.safetensors"),
                 std::make_shared<ModelCheckpoint>(dir / "best.safetensors",
                                                   ModelCheckpoint::Options{.monitor = "val_accuracy",
                                                                            .save_best_only = true,
                                                                            .save_weights_only = false,
                                                                            .mode = MonitorMode::Auto}),
                 std::make_shared<LearningRateScheduler>([](int epoch, double lr) { return epoch == 0 ? lr : lr / 2; })};
  History h = trainer.fit(train, o);
  CHECK(h["lr"] == std::vector<double>{0.01, 0.005, 0.0025});
  CHECK(h["val_loss"].size() == 3);
  CHECK(h.epoch_seconds.size() == 3);
  CHECK(h.train_samples == 3 * 60);
  CHECK(h.samples_per_second() > 0);

  std::ifstream csv(dir / "history.csv");
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == "epoch,accuracy,loss,lr,val_accuracy,val_loss,epoch_seconds");
  std::ifstream js(dir / "history.json");
  const std::string text((std::istreambuf_iterator<char>(js)), {});
  json::Value parsed = json::parse(text, "history.json");
  CHECK(parsed.find("val_accuracy")->as_array("val_accuracy").size() == 3);
  json::Value schema = json::parse(h.to_json({"loss", "val_accuracy"}), "history");
  CHECK(schema.as_object("history").size() == 3);
  CHECK(schema.find("epoch_seconds")->as_array("epoch_seconds").size() == 3);
  for (int e = 1; e <= 3; ++e) CHECK(fs::exists(dir / ("weights_" + std::to_string(e) + ".safetensors")));
  CHECK(SafetensorsReader(dir / "best.safetensors").metadata().count("petal_checkpoint") == 1);

  Logs eval = trainer.evaluate(val);
  CHECK(eval.at("loss") == doctest::Approx(h["val_loss"].back()).epsilon(1e-5));
  Tensor probs = trainer.predict(x, 7);
  CHECK(probs.shape() == Shape{60, 2});
  for (std::int64_t i = 0; i < 60; ++i)
    CHECK(probs.data<float>()[2 * i] + probs.data<float>()[2 * i + 1] == doctest::Approx(1.0).epsilon(1e-5));

  write_training_curves(h, dir / "curves.svg", "two spirals");
  std::ifstream svg(dir / "curves.svg");
  const std::string s((std::istreambuf_iterator<char>(svg)), {});
  CHECK(s.rfind("<?xml", 0) == 0);
  CHECK(s.find("<polyline") != std::string::npos);
  CHECK(s.find("validation") != std::string::npos);
  CHECK(s.find("</svg>") != std::string::npos);
}

TEST_CASE("ReduceLROnPlateau follows Keras: patience, min_delta, cooldown, min_lr, mode") {
  reset_layer_names();
  auto model = mlp(3, {4}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(1.0), Loss::sparse_categorical_crossentropy());
  // Keras defaults.
  ReduceLROnPlateau defaults;
  defaults.on_train_begin(trainer);
  for (int epoch = 0; epoch < 10; ++epoch) defaults.on_epoch_end(trainer, epoch, {{"val_loss", 1.0}});
  CHECK(trainer.optimizer().learning_rate() == 1.0);  // the best, then 9 epochs without improvement
  defaults.on_epoch_end(trainer, 10, {{"val_loss", 1.0 - 0.5e-4}});  // better by less than min_delta 1e-4
  CHECK(trainer.optimizer().learning_rate() == doctest::Approx(0.1));

  // Keras's on_epoch_end traced by hand: the rate after each epoch.
  trainer.optimizer().set_learning_rate(1.0);
  ReduceLROnPlateau plateau({.monitor = "val_loss", .factor = 0.5, .patience = 2, .mode = MonitorMode::Auto,
                             .min_delta = 0.01, .cooldown = 2, .min_lr = 0.2});
  plateau.on_train_begin(trainer);
  const std::vector<double> losses = {1.0, 0.995, 0.99, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
  std::vector<double> lrs;
  for (std::size_t e = 0; e < losses.size(); ++e) {
    plateau.on_epoch_end(trainer, static_cast<int>(e), {{"val_loss", losses[e]}});
    lrs.push_back(trainer.optimizer().learning_rate());
  }
  // e0 best 1.0; e1, e2 improve by less than min_delta: wait 1, 2 -> 0.5,
  // cooldown 2; e3 cooldown 1 and improves (best 0.5); e4 cooldown 0, wait 1;
  // e5 wait 2 -> 0.25, cooldown 2; e6 cooldown 1 (not counted); e7 cooldown
  // 0, wait 1; e8 wait 2 -> max(0.125, min_lr) = 0.2; e9 cooldown 1; e10
  // wait 1; e11, e12 wait 2, 3 but 0.2 is not above float32(min_lr): kept.
  CHECK(lrs == std::vector<double>{1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2});
  CHECK(plateau.best() == 0.5);
  CHECK(plateau.wait() == 3);

  // "acc" in the name maximises.
  trainer.optimizer().set_learning_rate(1.0);
  ReduceLROnPlateau acc({.monitor = "val_accuracy", .factor = 0.1, .patience = 1});
  acc.on_train_begin(trainer);
  acc.on_epoch_end(trainer, 0, {{"val_accuracy", 0.5}});
  acc.on_epoch_end(trainer, 1, {{"val_accuracy", 0.6}});
  CHECK(trainer.optimizer().learning_rate() == 1.0);
  acc.on_epoch_end(trainer, 2, {{"val_accuracy", 0.55}});
  CHECK(trainer.optimizer().learning_rate() == doctest::Approx(0.1));

  CHECK_THROWS_AS(acc.on_epoch_end(trainer, 3, {{"loss", 1.0}}), ValueError);
  CHECK_THROWS_AS(ReduceLROnPlateau({.factor = 1.0}), ValueError);
  trainer.optimizer().set_schedule(std::make_shared<StepDecay>(1.0, 1, 0.5));
  ReduceLROnPlateau scheduled({.patience = 0});
  scheduled.on_train_begin(trainer);
  scheduled.on_epoch_end(trainer, 0, {{"val_loss", 1.0}});  // improves
  CHECK_THROWS_AS(scheduled.on_epoch_end(trainer, 1, {{"val_loss", 1.0}}), ValueError);
}

TEST_CASE("ReduceLROnPlateau in fit lowers the logged rate; verbose notes it") {
  reset_layer_names();
  manual_seed(9);
  auto [x, y] = two_spirals(10);
  auto model = mlp(2, {4}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.0), Loss::sparse_categorical_crossentropy());  // lr 0: loss never moves
  TensorBatchSource train(x, y, 10), val(x, y, 20);
  FitOptions o = quiet(4);
  std::ostringstream out;
  o.verbose = Verbosity::Lines;
  o.out = &out;
  o.validation = &val;
  trainer.optimizer().set_learning_rate(0.0);
  o.callbacks = {std::make_shared<ReduceLROnPlateau>(
      ReduceLROnPlateau::Options{.factor = 0.5, .patience = 1, .verbose = true})};
  History h = trainer.fit(train, o);
  CHECK(h["lr"] == std::vector<double>{0.0, 0.0, 0.0, 0.0});  // 0 is not above min_lr 0: never reduced
  CHECK(out.str().find("ReduceLROnPlateau") == std::string::npos);

  trainer.compile(std::make_shared<SGD>(1e-9), Loss::sparse_categorical_crossentropy());
  std::ostringstream out2;
  o.out = &out2;
  o.callbacks = {std::make_shared<ReduceLROnPlateau>(
      ReduceLROnPlateau::Options{.factor = 0.5, .patience = 1, .verbose = true, .min_delta = 0.1})};
  h = trainer.fit(train, o);
  CHECK(h["lr"] == std::vector<double>{1e-9, 1e-9, 5e-10, 2.5e-10});
  CHECK(out2.str().find("Epoch 2: ReduceLROnPlateau reducing learning rate to 5e-10.") != std::string::npos);
}

TEST_CASE("LearningRateScheduler per batch sets the rate before every step; LambdaCallback sees every hook") {
  reset_layer_names();
  manual_seed(10);
  auto [x, y] = two_spirals(15);  // 30 rows: 3 batches of 10
  auto model = mlp(2, {4}, 2);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy());
  TensorBatchSource train(x, y, 10);
  std::vector<std::string> calls;
  std::vector<std::pair<std::int64_t, double>> rates;  // (optimizer iterations, lr) before each step
  auto lambda = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_begin = [&](Trainer&) { calls.push_back("train_begin"); },
      .on_train_end = [&](Trainer&, const History& h) { calls.push_back(str_cat("train_end ", h.epochs.size())); },
      .on_epoch_begin = [&](Trainer&, int epoch) { calls.push_back(str_cat("epoch_begin ", epoch)); },
      .on_epoch_end = [&](Trainer&, int epoch, const Logs& logs) {
        calls.push_back(str_cat("epoch_end ", epoch, logs.count("loss") ? " loss" : ""));
      },
      .on_batch_begin =
          [&](Trainer& t, int epoch, std::int64_t step) {
            calls.push_back(str_cat("batch_begin ", epoch, " ", step));
            rates.emplace_back(t.optimizer().iterations(), t.optimizer().learning_rate());
          },
      .on_batch_end = [&](Trainer&, int epoch, std::int64_t step,
                          const Logs&) { calls.push_back(str_cat("batch_end ", epoch, " ", step)); },
  });
  FitOptions o = quiet(2);
  o.callbacks = {std::make_shared<LearningRateScheduler>(
                     [](std::int64_t step, double lr) { return step == 0 ? 0.5 : lr * 0.9; },
                     LearningRateScheduler::Every::Batch),
                 lambda};
  History h = trainer.fit(train, o);
  REQUIRE(rates.size() == 6);
  double want = 0.5;
  for (std::size_t i = 0; i < rates.size(); ++i) {
    INFO("batch " << i);
    CHECK(rates[i].first == static_cast<std::int64_t>(i));
    CHECK(rates[i].second == doctest::Approx(want));
    want *= 0.9;
  }
  // The logged rate is the one of each epoch's first step.
  CHECK(h["lr"][0] == doctest::Approx(0.5));
  CHECK(h["lr"][1] == doctest::Approx(0.5 * std::pow(0.9, 3)));
  const std::vector<std::string> want_calls = {
      "train_begin", "epoch_begin 0", "batch_begin 0 0", "batch_end 0 0", "batch_begin 0 1", "batch_end 0 1",
      "batch_begin 0 2", "batch_end 0 2", "epoch_end 0 loss", "epoch_begin 1", "batch_begin 1 0", "batch_end 1 0",
      "batch_begin 1 1", "batch_end 1 1", "batch_begin 1 2", "batch_end 1 2", "epoch_end 1 loss", "train_end 2"};
  CHECK(calls == want_calls);

  // The epoch form is unchanged and ignores batches; an empty LambdaCallback does nothing.
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy());
  o.callbacks = {std::make_shared<LearningRateScheduler>([](int epoch, double) { return 0.1 * (epoch + 1); }),
                 std::make_shared<LambdaCallback>(LambdaCallback::Hooks{})};
  h = trainer.fit(train, o);
  CHECK(h["lr"] == std::vector<double>{0.1, 0.2});
  CHECK_THROWS_AS(LearningRateScheduler(std::function<double(std::int64_t, double)>(),
                                        LearningRateScheduler::Every::Batch),
                  ValueError);
}

TEST_CASE("fit refuses uncompiled trainers and integer images with clear errors") {
  reset_layer_names();
  auto model = mlp(3, {4}, 2);
  Trainer trainer(model);
  TensorBatchSource data(zeros({2, 3}), from_vector(std::vector<std::int64_t>{0, 1}), 2);
  CHECK_THROWS_AS(trainer.fit(data, quiet(1)), ValueError);
  trainer.compile(std::make_shared<SGD>(), Loss::sparse_categorical_crossentropy());
  TensorBatchSource bytes(zeros({2, 3}, DType::UInt8), from_vector(std::vector<std::int64_t>{0, 1}), 2);
  CHECK_THROWS_AS(trainer.fit(bytes, quiet(1)), DTypeError);
  CHECK_THROWS_AS(trainer.evaluate(bytes), DTypeError);
  // predict says the same, naming the model and the conversion (not an
  // error from the first matmul).
  const std::string message =
      test::thrown_message<DTypeError>([&] { trainer.predict(zeros({2, 3}, DType::UInt8)); });
  CHECK(message.find(model->name()) != std::string::npos);
  CHECK(message.find("output_float") != std::string::npos);
  CHECK_THROWS_AS(trainer.compile(std::make_shared<SGD>(), Loss::parse("categorical_crossentropy"), {"f1_score"}), ValueError);
}
