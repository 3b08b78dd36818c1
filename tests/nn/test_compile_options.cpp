// Trainer::compile beyond one loss and plain metrics: sample-weighted metrics
// (Keras's weighted_metrics), a loss, a loss weight and metrics per output of a
// functional model, and the fused sigmoid + binary cross-entropy.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "core/random.hpp"
#include "data/feature_dataset.hpp"
#include "nn/feature_source.hpp"
#include "nn/nn.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::nn;
using petal::data::FeatureDataset;

namespace {

// Rows of t, row i repeated counts[i] times (an integer sample weight spelled out).
Tensor repeat_rows(const Tensor& t, const std::vector<int>& counts) {
  std::vector<std::int64_t> index;
  for (std::size_t i = 0; i < counts.size(); ++i)
    for (int k = 0; k < counts[i]; ++k) index.push_back(static_cast<std::int64_t>(i));
  return ops::take(t, from_vector(index), 0);
}

std::vector<float> uniform_values(Generator& gen, std::size_t n, double lo, double hi) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(lo + (hi - lo) * gen.uniform_double());
  return v;
}

struct MetricCase {
  std::string name;
  Tensor output, target;
};

}  // namespace

TEST_CASE("every metric weighted by integer sample weights equals the metric over repeated samples") {
  Generator gen(11);
  const std::int64_t n = 37, classes = 6;
  std::vector<std::int64_t> labels(n);
  std::vector<float> one_hot(static_cast<std::size_t>(n * classes), 0.0f), bits, regress;
  for (std::int64_t i = 0; i < n; ++i) {
    labels[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(gen.uniform_double() * classes) % classes;
    one_hot[static_cast<std::size_t>(i * classes + labels[static_cast<std::size_t>(i)])] = 1.0f;
  }
  for (std::int64_t i = 0; i < n * 3; ++i) bits.push_back(gen.uniform_double() < 0.4 ? 1.0f : 0.0f);
  regress = uniform_values(gen, static_cast<std::size_t>(n * 2), -2, 2);
  const Tensor scores = from_vector(uniform_values(gen, static_cast<std::size_t>(n * classes), 0, 1), {n, classes});
  const Tensor probs = from_vector(uniform_values(gen, static_cast<std::size_t>(n * 3), 0, 1), {n, 3});
  const Tensor index_target = from_vector(labels), one_hot_target = from_vector(one_hot, {n, classes});
  const Tensor bit_target = from_vector(bits, {n, 3});
  const Tensor values = from_vector(uniform_values(gen, static_cast<std::size_t>(n * 2), -2, 2), {n, 2});
  const Tensor value_target = from_vector(regress, {n, 2});
  const std::vector<MetricCase> cases = {
      {"accuracy", scores, index_target},
      {"categorical_accuracy", scores, one_hot_target},
      {"top_k_categorical_accuracy", scores, one_hot_target},
      {"sparse_top_k_categorical_accuracy", scores, index_target},
      {"binary_accuracy", probs, bit_target},
      {"precision", probs, bit_target},
      {"recall", probs, bit_target},
      {"auc", probs, bit_target},
      {"mae", values, value_target},
      {"mse", values, value_target},
  };
  std::vector<int> counts(static_cast<std::size_t>(n));
  std::vector<float> weights;
  for (int& c : counts) {
    c = static_cast<int>(gen.uniform_double() * 4);  // 0..3, zeros drop samples
    weights.push_back(static_cast<float>(c));
  }
  for (const MetricCase& c : cases) {
    CAPTURE(c.name);
    auto weighted = make_metric(c.name), repeated = make_metric(c.name), plain = make_metric(c.name);
    // Two batches, to check the weights accumulate across updates.
    const std::int64_t half = n / 2;
    auto rows = [](const Tensor& t, std::int64_t from, std::int64_t to) { return t.slice(0, from, to).contiguous(); };
    const Tensor w = from_vector(weights);
    weighted->update(rows(c.output, 0, half), rows(c.target, 0, half), rows(w, 0, half));
    weighted->update(rows(c.output, half, n), rows(c.target, half, n), rows(w, half, n).reshape({n - half, 1}));
    repeated->update(repeat_rows(c.output, counts), repeat_rows(c.target, counts));
    plain->update(c.output, c.target);
    CHECK(weighted->result() == doctest::Approx(repeated->result()).epsilon(1e-12));
    // The weights matter: the unweighted figure differs on these data.
    CHECK(weighted->result() != doctest::Approx(plain->result()).epsilon(1e-9));
  }
  // Bad weights name the problem.
  Accuracy acc;
  CHECK_THROWS_AS(acc.update(scores, index_target, from_vector(std::vector<float>{1, 2})), ShapeError);
  std::vector<float> negative(static_cast<std::size_t>(n), 1.0f);
  negative[3] = -1.0f;
  const std::string msg =
      test::thrown_message<ValueError>([&] { acc.update(scores, index_target, from_vector(negative)); });
  CHECK(msg.find("at 3") != std::string::npos);
}

TEST_CASE("weighted_metrics see the batch's sample weights; metrics do not; a name in both logs weighted_<name>") {
  reset_layer_names();
  manual_seed(3);
  const std::int64_t n = 24;
  Generator gen(3);
  const Tensor x = from_vector(uniform_values(gen, static_cast<std::size_t>(n * 4), -1, 1), {n, 4});
  std::vector<std::int64_t> labels;
  std::vector<float> w;
  for (std::int64_t i = 0; i < n; ++i) {
    labels.push_back(i % 3);
    w.push_back(static_cast<float>(i % 4));
  }
  const Tensor y = from_vector(labels);
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{4}), std::make_shared<Dense>(3, "softmax")});
  Trainer trainer(model);
  CompileOptions options;
  options.metrics = {"accuracy"};
  options.weighted_metrics = {"accuracy", "top_k_categorical_accuracy"};
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy(), options);
  TensorBatchSource data(x, y, 10);
  data.set_sample_weights(from_vector(w));
  const Logs logs = trainer.evaluate(data);
  REQUIRE(logs.count("accuracy") == 1);
  REQUIRE(logs.count("weighted_accuracy") == 1);
  REQUIRE(logs.count("top_k_categorical_accuracy") == 1);  // only weighted: keeps its name, like Keras 3
  // The same figures from the predictions.
  const std::vector<std::int64_t> predicted = predicted_classes(trainer.predict(x));
  double correct = 0, weighted_correct = 0, total_weight = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const bool hit = predicted[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(i)];
    correct += hit;
    weighted_correct += hit * w[static_cast<std::size_t>(i)];
    total_weight += w[static_cast<std::size_t>(i)];
  }
  CHECK(logs.at("accuracy") == doctest::Approx(correct / n));
  CHECK(logs.at("weighted_accuracy") == doctest::Approx(weighted_correct / total_weight));
  CHECK(logs.at("top_k_categorical_accuracy") == doctest::Approx(1.0));  // 3 classes, k = 5
  // compile(optimizer, loss) keeps the lab's default accuracy; CompileOptions has no default metrics.
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy());
  CHECK(trainer.evaluate(data).count("accuracy") == 1);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy(), CompileOptions{});
  CHECK(trainer.evaluate(data).size() == 1);
  // Per-output settings need output layers.
  CompileOptions bad;
  bad.loss_weights = {{"dense", 2.0}};
  const std::string msg = test::thrown_message<ValueError>(
      [&] { trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy(), bad); });
  CHECK(msg.find("\"dense\"") != std::string::npos);
}

TEST_CASE("a functional model with two outputs: a loss, a loss weight and metrics per output, Keras 3's log keys") {
  reset_layer_names();
  manual_seed(21);
  Generator gen(21);
  const std::int64_t n = 96;
  std::vector<float> xs = uniform_values(gen, static_cast<std::size_t>(n * 3), -1, 1), reg;
  std::vector<std::int64_t> cls;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* r = xs.data() + i * 3;
    cls.push_back(r[0] + r[1] > 0 ? 1 : 0);
    reg.push_back(2 * r[2] - r[0]);
  }
  auto ds = FeatureDataset::from_tensors(
      {{"features", from_vector(xs, {n, 3})}, {"cls", from_vector(cls)}, {"reg", from_vector(reg, {n, 1})}});
  auto in = Input({3}, "features");
  DenseOptions cls_options, reg_options;
  cls_options.name = "cls";
  reg_options.name = "reg";
  auto hidden = layer<Dense>(16, "relu")(in);
  auto cls_out = layer<Dense>(2, "softmax", cls_options)(hidden);
  auto reg_out = layer<Dense>(1, ActivationSpec{}, reg_options)(hidden);
  auto model = std::make_shared<Model>(std::vector{in}, std::vector{cls_out, reg_out}, "two_tasks");
  Trainer trainer(model);
  CompileOptions options;
  options.output_losses = {{"cls", Loss::sparse_categorical_crossentropy()}, {"reg", Loss::mean_squared_error()}};
  options.loss_weights = {{"reg", 0.5}};
  options.output_metrics = {{"cls", {"accuracy"}}, {"reg", {"mae"}}};
  trainer.compile(std::make_shared<Adam>(0.02), Loss::mean_squared_error(), options);
  auto all = FeatureBatchSource::named(ds.batch(n), {"features"}, {"cls", "reg"});
  const Logs start = trainer.evaluate(all);
  for (const char* key : {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}) {
    CAPTURE(key);
    CHECK(start.count(key) == 1);
  }
  CHECK(start.size() == 5);
  CHECK(start.at("loss") == doctest::Approx(start.at("cls_loss") + 0.5 * start.at("reg_loss")).epsilon(1e-5));
  // The metrics equal the figures computed from the model's own outputs.
  {
    ag::NoGradGuard no_grad;
    model->eval();
    const std::vector<ag::Variable> outs = (*model)(std::vector{ag::Variable(from_vector(xs, {n, 3}), false)});
    const std::vector<std::int64_t> predicted = predicted_classes(outs[0].data());
    const std::vector<float> r = outs[1].data().to_vector<float>();
    double correct = 0, abs_error = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      correct += predicted[static_cast<std::size_t>(i)] == cls[static_cast<std::size_t>(i)];
      abs_error += std::abs(r[static_cast<std::size_t>(i)] - reg[static_cast<std::size_t>(i)]);
    }
    CHECK(start.at("cls_accuracy") == doctest::Approx(correct / n));
    CHECK(start.at("reg_mae") == doctest::Approx(abs_error / n).epsilon(1e-5));
  }
  FitOptions fit;
  fit.epochs = 40;
  fit.verbose = Verbosity::Quiet;
  fit.validation = &all;
  auto train = FeatureBatchSource::named(ds.shuffle(96, 2).batch(16), {"features"}, {"cls", "reg"});
  History h = trainer.fit(train, fit);
  for (const char* key : {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae", "val_cls_accuracy", "val_reg_mae"}) {
    CAPTURE(key);
    CHECK(h[key].size() == 40);
  }
  const Logs end = trainer.evaluate(all);
  MESSAGE("loss " << start.at("loss") << " -> " << end.at("loss") << ", cls_accuracy " << start.at("cls_accuracy")
                  << " -> " << end.at("cls_accuracy") << ", reg_mae " << start.at("reg_mae") << " -> "
                  << end.at("reg_mae"));
  CHECK(end.at("cls_accuracy") > 0.9);
  CHECK(end.at("reg_mae") < 0.25);
  // A flat metric list applies to every output.
  trainer.compile(std::make_shared<Adam>(0.02), Loss::mean_squared_error(),
                  CompileOptions{.metrics = {"accuracy"}, .output_losses = options.output_losses});
  const Logs flat = trainer.evaluate(all);
  CHECK(flat.count("cls_accuracy") == 1);
  CHECK(flat.count("reg_accuracy") == 1);
  // No metrics: the losses only (compile(optimizer, loss) is the same for several outputs: test_feature_source.cpp).
  trainer.compile(std::make_shared<Adam>(0.02), Loss::mean_squared_error(),
                  CompileOptions{.output_losses = options.output_losses});
  CHECK(trainer.evaluate(all).size() == 3);
  // An unknown output name lists the outputs.
  CompileOptions typo;
  typo.output_metrics = {{"regression", {"mae"}}};
  const std::string msg = test::thrown_message<ValueError>(
      [&] { trainer.compile(std::make_shared<Adam>(0.02), Loss::mean_squared_error(), typo); });
  CHECK(msg.find("\"regression\"") != std::string::npos);
  CHECK(msg.find("cls, reg") != std::string::npos);
}

TEST_CASE("a sigmoid output with binary cross-entropy trains through the fused, stable logits form") {
  reset_layer_names();
  const std::int64_t n = 6;
  auto dense = std::make_shared<Dense>(2, "sigmoid");
  auto model = std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{std::make_shared<InputLayer>(Shape{1}), dense});
  CHECK(model->logits_activation() == ActivationKind::Sigmoid);
  model->build({1});
  // Logits of +-40 and +-2: the probabilities of the first column saturate to exactly 1 or 0 in float32.
  for (auto& w : model->weights()) {
    const bool kernel = w.name.find("kernel") != std::string::npos;
    w.variable.mutable_data().copy_(kernel ? from_vector(std::vector<float>{40, 2}, {1, 2})
                                           : from_vector(std::vector<float>{0, 0}));
  }
  const Tensor x = from_vector(std::vector<float>{1, -1, 1, -1, 1, -1}, {n, 1});
  const Tensor y = from_vector(std::vector<float>{0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1}, {n, 2});
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.0), Loss::binary_crossentropy(), {"binary_accuracy"});
  TensorBatchSource data(x, y, n);
  const Logs logs = trainer.evaluate(data);
  // The reference: the loss from the logits, as Keras's TensorFlow backend computes it.
  const ag::Variable logits = model->call_logits(ag::Variable(x, false));
  const double from_logits = Loss::binary_crossentropy(true)(logits, y).data().item<double>();
  const double clipped = Loss::binary_crossentropy()((*model)(ag::Variable(x, false)), y).data().item<double>();
  MESSAGE("fused " << logs.at("loss") << ", from logits " << from_logits << ", from clipped probabilities "
                   << clipped);
  CHECK(logs.at("loss") == doctest::Approx(from_logits).epsilon(1e-6));
  CHECK(std::abs(clipped - from_logits) > 1.0);  // the clipped form loses the wrong, saturated predictions
  // The metric sees probabilities: (p > 0.5) == target.
  const std::vector<float> p = trainer.predict(x).to_vector<float>(), t = y.to_vector<float>();
  double hits = 0;
  for (std::size_t i = 0; i < p.size(); ++i) hits += (p[i] > 0.5f ? 1.0f : 0.0f) == t[i];
  CHECK(logs.at("binary_accuracy") == doctest::Approx(hits / static_cast<double>(p.size())));
  // Saturated, wrong predictions still get a gradient (zero in the clipped form).
  model->zero_grad();
  trainer.train_step(*[&] {
    data.begin_epoch(0);
    return data.next();
  }());
  CHECK(std::abs(dense->kernel().grad().to_vector<float>()[0]) > 0.1f);
  // A from_logits loss or another loss sees the output as it is.
  CHECK_FALSE(Loss::binary_crossentropy(true).fuses_with(ActivationKind::Sigmoid));
  CHECK_FALSE(Loss::mean_squared_error().fuses_with(ActivationKind::Sigmoid));
  CHECK_FALSE(Loss::binary_crossentropy().fuses_with(ActivationKind::Softmax));
}
