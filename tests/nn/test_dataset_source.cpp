// DatasetSource feeds the data pipeline's batches to the Trainer: one real
// flowers shard, a tiny model, a short fit and an evaluation pass.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "data/dataset.hpp"
#include "data/file_list.hpp"
#include "nn/dataset_source.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

TEST_CASE("DatasetSource: fit and evaluate straight from TFRecords") {
  const char* shared = std::getenv("PETAL_SHARED_DIR");
  const fs::path dir = fs::path(shared ? shared : "../shared") / "data" / "flowers-192";
  const auto files = data::glob_files((dir / "*.tfrec").string());
  if (files.empty()) {
    MESSAGE("skipped: no shards in ", dir.string());
    return;
  }
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
