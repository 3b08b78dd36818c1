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
