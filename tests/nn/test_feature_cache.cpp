// Frozen-base feature caching: training the head from cached features equals
// training the whole model with its base frozen.
#include <doctest/doctest.h>

#include "core/error.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::shared_ptr<Sequential> model_with_frozen_base() {
  reset_layer_names();
  manual_seed(17);
  auto base = std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{std::make_shared<InputLayer>(Shape{4, 4, 2}),
                                           std::make_shared<Conv2D>(3, 3, ConvOptions{.strides = 1, .padding = Padding::Same, .use_bias = false}),
                                           std::make_shared<BatchNormalization>(), std::make_shared<ReLU>(6.0)},
      "base");
  base->set_trainable(false);
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      base, std::make_shared<Flatten>(), std::make_shared<Dense>(3, "softmax")});
}

}  // namespace

TEST_CASE("frozen prefix: frozen or parameter-free leading layers, stopping at trainable ones and dropout") {
  auto model = model_with_frozen_base();
  CHECK(frozen_prefix_length(*model) == 2);
  model->layers()[0]->set_trainable(true);
  CHECK(frozen_prefix_length(*model) == 0);
  reset_layer_names();
  Sequential with_dropout({std::make_shared<InputLayer>(Shape{3}), std::make_shared<Flatten>(), std::make_shared<Dropout>(0.5),
                           std::make_shared<Dense>(2)});
  CHECK(frozen_prefix_length(with_dropout) == 2);  // Input, Flatten
}

TEST_CASE("training the head on cached features equals training the frozen-base model") {
  Generator gen(5);
  Tensor x = uniform({24, 4, 4, 2}, -1, 1, gen);
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 24; ++i) labels.push_back(i % 3);
  Tensor y = from_vector(labels);

  auto full = model_with_frozen_base();
  Trainer full_trainer(full);
  full_trainer.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy());
  TensorBatchSource data(x, y, 8);
  FitOptions o;
  o.epochs = 3;
  o.verbose = Verbosity::Quiet;
  History full_history = full_trainer.fit(data, o);

  auto cached_model = model_with_frozen_base();
  const std::size_t k = frozen_prefix_length(*cached_model);
  CachedFeatures features = cache_features(*cached_model, k, data);
  CHECK(features.features.shape() == Shape{24, 48});
  CHECK(features.targets.to_vector<std::int64_t>() == labels);
  auto head = head_of(*cached_model, k);
  CHECK(head->input_shape() == Shape{48});
  Trainer head_trainer(head);
  head_trainer.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy());
  TensorBatchSource cached(features.features, features.targets, 8);
  History head_history = head_trainer.fit(cached, o);

  for (std::size_t e = 0; e < 3; ++e)
    CHECK(head_history["loss"][e] == doctest::Approx(full_history["loss"][e]).epsilon(1e-5));
  auto a = full->weights(), b = cached_model->weights();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    const auto va = a[i].variable.data().to_vector<float>(), vb = b[i].variable.data().to_vector<float>();
    for (std::size_t j = 0; j < va.size(); ++j) CHECK(vb[j] == doctest::Approx(va[j]).epsilon(1e-4));
  }
  CHECK_THROWS_AS(head_of(*cached_model, 3), IndexError);
}

namespace {

// Batches of `x` (and its row numbers as targets), `batch` rows each, that
// claims `claimed_steps` per epoch (-1: unknown): the feature cache sizes
// its buffer from that claim and must cope when it is wrong.
class ClaimingSource : public BatchSource {
 public:
  ClaimingSource(Tensor x, std::int64_t batch, std::int64_t claimed_steps)
      : x_(std::move(x)), batch_(batch), claimed_(claimed_steps) {}
  void begin_epoch(int) override { next_row_ = 0; }
  std::optional<Batch> next() override {
    if (next_row_ >= x_.size(0)) return std::nullopt;
    const std::int64_t end = std::min(next_row_ + batch_, x_.size(0));
    std::vector<std::int64_t> rows;
    for (std::int64_t r = next_row_; r < end; ++r) rows.push_back(r);
    Batch b{x_.slice(0, next_row_, end).contiguous(), from_vector(rows)};
    next_row_ = end;
    return b;
  }
  std::int64_t steps_per_epoch() const override { return claimed_; }

 private:
  Tensor x_;
  std::int64_t batch_, claimed_, next_row_ = 0;
};

}  // namespace

TEST_CASE("cached features hold every row in order whether the source's step count is right, short, long or unknown") {
  // 23 rows in batches of 5: four full batches and one of 3. The true count
  // (5) fills a buffer sized 25 rows up to a prefix; 3 is too few (the rest
  // is kept apart and joined); 9 leaves most of the buffer unused; -1
  // keeps every batch apart.
  Generator gen(9);
  const Tensor x = uniform({23, 4, 4, 2}, -1, 1, gen);
  auto model = model_with_frozen_base();
  const std::size_t k = frozen_prefix_length(*model);
  const std::vector<float> expected = run_layers(*model, 0, k, x).to_vector<float>();
  std::vector<std::int64_t> rows(23);
  for (std::int64_t r = 0; r < 23; ++r) rows[static_cast<std::size_t>(r)] = r;
  for (std::int64_t claimed : {5, 3, 9, 1, -1}) {
    ClaimingSource source(x, 5, claimed);
    const CachedFeatures f = cache_features(*model, k, source);
    INFO("claimed steps ", claimed);
    CHECK(f.features.shape() == Shape{23, 48});
    CHECK(f.features.is_contiguous());
    const std::vector<float> got = f.features.to_vector<float>();
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-6));
    CHECK(f.targets.to_vector<std::int64_t>() == rows);
    CHECK(f.batch_rows == std::vector<std::int64_t>{5, 5, 5, 5, 3});
    REQUIRE(f.batch_seconds.size() == 5);
    for (double s : f.batch_seconds) CHECK(s > 0.0);
  }
}

TEST_CASE("the median batch rate counts only the batches of the asked size") {
  CachedFeatures f;
  CHECK(median_batch_rate(f, 64) == 0.0);
  // Rates of the full batches: 64 / 0.5 = 128, 64 / 0.25 = 256, 64 / 0.2 = 320;
  // the short batch (10 rows in 0.01 s, 1000 rows/s) is left out.
  f.batch_rows = {64, 64, 10, 64};
  f.batch_seconds = {0.5, 0.25, 0.01, 0.2};
  CHECK(median_batch_rate(f, 64) == doctest::Approx(256.0));
  CHECK(median_batch_rate(f, 10) == doctest::Approx(1000.0));
  CHECK(median_batch_rate(f, 32) == 0.0);
  // An even count: the mean of the middle two (256 and 320).
  f.batch_rows.push_back(64);
  f.batch_seconds.push_back(0.1);  // 640 rows/s
  CHECK(median_batch_rate(f, 64) == doctest::Approx(288.0));
}
