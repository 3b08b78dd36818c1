// FeatureBatchSource: a FeatureDataset of named tensors feeding Trainer::fit.
#include <doctest/doctest.h>

#include <cmath>

#include "core/random.hpp"
#include "data/feature_dataset.hpp"
#include "nn/feature_source.hpp"
#include "nn/nn.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::nn;
using petal::data::FeatureDataset;

namespace {

FitOptions quiet(int epochs) {
  FitOptions o;
  o.epochs = epochs;
  o.verbose = Verbosity::Quiet;
  return o;
}

}  // namespace

TEST_CASE("fit on a from_tensors regression dataset through FeatureBatchSource") {
  reset_layer_names();
  manual_seed(5);
  Generator gen(5);
  const std::int64_t n = 128;
  std::vector<float> xs, ys, ws;
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = 2 * gen.uniform_double() - 1, b = 2 * gen.uniform_double() - 1;
    xs.push_back(static_cast<float>(a));
    xs.push_back(static_cast<float>(b));
    ys.push_back(static_cast<float>(3 * a - 2 * b + 1));
    ws.push_back(1.0f);
  }
  const Tensor x = from_vector(xs, {n, 2}), y = from_vector(ys, {n, 1}), w = from_vector(ws);
  auto ds = FeatureDataset::from_tensors({{"features", x}, {"target", y}, {"weight", w}});
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{2}), std::make_shared<Dense>(1)});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.05), Loss::parse("mse"), {"mae"});
  FeatureBatchSource all(ds.batch(n), "features", "target");
  CHECK(all.steps_per_epoch() == 1);
  const double start = trainer.evaluate(all).at("loss");
  FeatureBatchSource train(ds.shuffle(64, 3).batch(16), "features", "target", "weight");
  CHECK(train.steps_per_epoch() == 8);
  History h = trainer.fit(train, quiet(60));
  const double end = trainer.evaluate(all).at("loss");
  MESSAGE("MSE " << start << " -> " << end);
  CHECK(h["loss"].size() == 60);
  CHECK(end < 0.01 * start);
  // The same batches as TensorBatchSource would give (unshuffled).
  TensorBatchSource ref(x, y, 16);
  FeatureBatchSource mine(ds.batch(16), "features", "target");
  ref.begin_epoch(0);
  mine.begin_epoch(0);
  auto rb = ref.next();
  auto mb = mine.next();
  REQUIRE(rb);
  REQUIRE(mb);
  CHECK(rb->x.to_vector<float>() == mb->x.to_vector<float>());
  CHECK(rb->y.to_vector<float>() == mb->y.to_vector<float>());
  // A missing key lists the batch's keys.
  FeatureBatchSource bad(ds.batch(4), "features", "label");
  bad.begin_epoch(0);
  const std::string msg = test::thrown_message<ValueError>([&] { bad.next(); });
  CHECK(msg.find("\"label\"") != std::string::npos);
  CHECK(msg.find("target") != std::string::npos);
}

TEST_CASE("a two-input, two-output functional Model fits on named batches; losses per output summed") {
  reset_layer_names();
  manual_seed(9);
  Generator gen(9);
  const std::int64_t n = 128;
  std::vector<float> as, bs, sums, diffs;
  for (std::int64_t i = 0; i < n; ++i) {
    const float a0 = static_cast<float>(2 * gen.uniform_double() - 1), a1 = static_cast<float>(2 * gen.uniform_double() - 1);
    const float b = static_cast<float>(2 * gen.uniform_double() - 1);
    as.push_back(a0);
    as.push_back(a1);
    bs.push_back(b);
    sums.push_back(a0 + a1 + b + 1);
    diffs.push_back(a0 - 2 * b);
  }
  auto ds = FeatureDataset::from_tensors({{"a", from_vector(as, {n, 2})},
                                          {"b", from_vector(bs, {n, 1})},
                                          {"sum", from_vector(sums, {n, 1})},
                                          {"diff", from_vector(diffs, {n, 1})}});
  auto a = Input({2}, "a");
  auto b = Input({1}, "b");
  auto joined = layer<Concatenate>()({a, b});
  DenseOptions sum_options, diff_options;
  sum_options.name = "sum";
  diff_options.name = "diff";
  auto sum = layer<Dense>(1, ActivationSpec{}, sum_options)(joined);
  auto diff = layer<Dense>(1, ActivationSpec{}, diff_options)(joined);
  auto model = std::make_shared<Model>(std::vector{a, b}, std::vector{sum, diff}, "two_heads");
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.05), Loss::parse("mse"));
  auto all = FeatureBatchSource::named(ds.batch(n), {"a", "b"}, {"sum", "diff"});
  const Logs start = trainer.evaluate(all);
  // The loss is the sum of the per-output losses.
  CHECK(start.at("loss") == doctest::Approx(start.at("sum_loss") + start.at("diff_loss")).epsilon(1e-5));
  CHECK(start.size() == 3);  // loss, sum_loss, diff_loss: compile(optimizer, loss) adds no metric to several outputs
  auto train = FeatureBatchSource::named(ds.shuffle(64, 1).batch(16), {"a", "b"}, {"sum", "diff"});
  History h = trainer.fit(train, quiet(60));
  CHECK(h["sum_loss"].size() == 60);
  const Logs end = trainer.evaluate(all);
  MESSAGE("loss " << start.at("loss") << " -> " << end.at("loss") << " (sum " << end.at("sum_loss") << ", diff "
                  << end.at("diff_loss") << ")");
  CHECK(end.at("loss") < 0.01 * start.at("loss"));
  // A missing input names the Input layer and the batch's inputs.
  auto wrong = FeatureBatchSource::named(ds.batch(n), {"a", "sum"}, {"sum", "diff"});
  const std::string msg = test::thrown_message<ValueError>([&] { trainer.evaluate(wrong); });
  CHECK(msg.find("\"b\"") != std::string::npos);
  // Plain (x, y) batches are refused for two inputs; predict needs one output.
  FeatureBatchSource plain(ds.batch(n), "a", "sum");
  CHECK_THROWS_AS(trainer.evaluate(plain), ValueError);
  CHECK_THROWS_AS(trainer.predict(all), ValueError);
}

TEST_CASE("a single-input functional Model takes named batches and plain ones alike") {
  reset_layer_names();
  auto x = Input({2}, "features");
  DenseOptions o;
  o.name = "out";
  auto y = layer<Dense>(1, ActivationSpec{}, o)(x);
  auto model = std::make_shared<Model>(x, y);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::parse("mse"), {"mae"});
  auto ds = FeatureDataset::from_tensors({{"features", ones({8, 2})}, {"out", zeros({8, 1})}}).batch(4);
  auto named = FeatureBatchSource::named(ds, {"features"}, {"out"});
  FeatureBatchSource plain(ds, "features", "out");
  const Logs a = trainer.evaluate(named), b = trainer.evaluate(plain);
  CHECK(a.at("loss") == doctest::Approx(b.at("loss")));
  CHECK(a.at("mae") == doctest::Approx(b.at("mae")));
  CHECK(trainer.predict(named).shape() == Shape{8, 1});
}
