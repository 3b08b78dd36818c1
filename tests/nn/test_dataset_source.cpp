// DatasetSource feeds the data pipeline's batches to the Trainer: one real
// flowers shard, a tiny model, a short fit and an evaluation pass.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "data/dataset.hpp"
#include "data/file_list.hpp"
#include "nn/dataset_source.hpp"
#include "nn/nn.hpp"
#include "tests/shared_data.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

TEST_CASE("DatasetSource: fit and evaluate straight from TFRecords") {
  const fs::path dir = petal::test::flowers_dir();
  const auto files = data::glob_files((dir / "*.tfrec").string());
  REQUIRE_MESSAGE(!files.empty(), "no shards in ", dir.string(), " (PETAL_SHARED_DIR: the shared data folder)");
  data::Dataset ds = data::Dataset::from_tfrecords({files.front()});
  ds.map(data::Preprocess{}).batch(32).output_float(data::PixelScale::ZeroOne).deterministic(true).num_parallel_calls(2);
  DatasetSource source(ds);
  CHECK(source.steps_per_epoch() == (ds.num_records() + 31) / 32);

  reset_layer_names();
  manual_seed(2);
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Flatten>(Shape{192, 192, 3}), std::make_shared<Dense>(5, "softmax")});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(), Loss::sparse_categorical_crossentropy());
  FitOptions o;
  o.epochs = 1;
  o.steps_per_epoch = 2;
  o.verbose = Verbosity::Quiet;
  History h = trainer.fit(source, o);
  CHECK(h.train_samples == 64);
  Trainer::Predictions p = trainer.predict_with_targets(source);
  CHECK(p.outputs.shape() == Shape{ds.num_records(), 5});
  CHECK(p.targets.size(0) == ds.num_records());
  const auto m = confusion_matrix(target_classes(p.targets), predicted_classes(p.outputs), 5);
  std::int64_t total = 0;
  for (const auto& row : m)
    for (auto c : row) total += c;
  CHECK(total == ds.num_records());
}

TEST_CASE("DatasetSource: begin_epoch(e) replays pass e of an uninterrupted run (exact resume)") {
  const fs::path dir = petal::test::flowers_dir();
  const auto files = data::glob_files((dir / "*.tfrec").string());
  REQUIRE_MESSAGE(files.size() >= 2, "fewer than 2 shards in ", dir.string(),
                  " (PETAL_SHARED_DIR: the shared data folder)");
  // Labels (and a pixel checksum) of every batch of one epoch.
  auto epoch_signature = [](DatasetSource& source, int epoch) {
    std::vector<double> signature;
    source.begin_epoch(epoch);
    while (auto batch = source.next()) {
      for (std::int64_t label : batch->y.to_vector<std::int64_t>()) signature.push_back(double(label));
      double pixels = 0;
      for (std::uint8_t v : batch->x.to_vector<std::uint8_t>()) pixels += v;
      signature.push_back(pixels);
    }
    return signature;
  };
  auto make_dataset = [&] {
    data::Dataset ds = data::Dataset::from_tfrecords({files[0], files[1]});
    ds.map(data::Preprocess{.height = 24, .width = 24, .random_flip = true})
        .shuffle(256, /*seed=*/7)
        .batch(100)
        .num_parallel_calls(2)
        .deterministic(true);
    return ds;
  };
  data::Dataset uninterrupted = make_dataset();
  DatasetSource all(uninterrupted);
  std::vector<std::vector<double>> expected;
  for (int e = 0; e < 3; ++e) expected.push_back(epoch_signature(all, e));
  CHECK(expected[1] != expected[2]);  // each pass is shuffled anew

  data::Dataset resumed_ds = make_dataset();
  DatasetSource resumed(resumed_ds);
  CHECK(epoch_signature(resumed, 2) == expected[2]);
  CHECK(epoch_signature(resumed, 1) == expected[1]);
}
