#include "examples/transfer_model.hpp"

#include <chrono>
#include <cstdio>
#include <sstream>

#include "core/error.hpp"
#include "distributed/data_parallel.hpp"
#include "distributed/sharded_batch_source.hpp"
#include "kernels/ops.hpp"
#include "examples/flowers_common.hpp"
#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"
#include "nn/feature_cache.hpp"
#include "nn/losses.hpp"
#include "nn/metrics.hpp"
#include "nn/optimizers.hpp"
#include "nn/trainer.hpp"
#include "nn/keras_h5.hpp"
#include "nn/weights_io.hpp"

namespace petal::examples {

TransferModel build_transfer_model(int input_size, const std::string& head, std::vector<std::string> classes,
                                   data::PixelScale scale) {
  PETAL_CHECK(head == "flatten" || head == "gap", ValueError, "transfer model: head must be flatten or gap, got \"",
              head, "\"");
  PETAL_CHECK(!classes.empty(), ValueError, "transfer model: no classes");
  TransferModel m;
  m.head = head;
  m.input_size = input_size;
  m.scale = scale;
  m.classes = std::move(classes);
  m.base = std::make_shared<nn::MobileNetV2>(Shape{input_size, input_size, 3}, 1.0, /*include_top=*/false);
  std::shared_ptr<nn::Module> reduce;
  if (head == "flatten") reduce = std::make_shared<nn::Flatten>("flatten");
  else reduce = std::make_shared<nn::GlobalAveragePooling2D>("global_average_pooling2d");
  nn::DenseOptions dense;
  dense.name = "dense";
  m.model = std::make_shared<nn::Sequential>(
      std::vector<std::shared_ptr<nn::Module>>{
          m.base, reduce, std::make_shared<nn::Dense>(static_cast<std::int64_t>(m.classes.size()), "softmax", dense)},
      "flowers_transfer");
  return m;
}

nn::Metadata transfer_metadata(const TransferModel& m) {
  return {{"architecture", "mobilenet_v2_transfer"},
          {"base", "MobileNetV2(alpha=1.0, include_top=False)"},
          {"head", m.head},
          {"input_size", std::to_string(m.input_size)},
          {"classes", join(m.classes, ",")},
          {"preprocessing", m.scale == data::PixelScale::MinusOneOne ? "mobilenet" : "lab"},
          {"preprocessing_formula", preprocessing_formula(m.scale)}};
}

TransferModel load_transfer_model(const std::filesystem::path& path) {
  PETAL_CHECK(!nn::is_keras_h5(nn::weight_file_format(path)), FormatError, path.string(),
              ": a Keras .h5 holds the weights but not the model's architecture and classes; pass the "
              "model.safetensors that flowers_transfer wrote beside it");
  nn::Metadata meta;
  {
    nn::SafetensorsReader reader(path);
    meta = reader.metadata();
  }
  auto field = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    PETAL_CHECK(it != meta.end(), FormatError, path.string(), ": no \"", key,
                "\" in __metadata__; not a model written by flowers_transfer");
    return it->second;
  };
  PETAL_CHECK(field("architecture") == "mobilenet_v2_transfer", FormatError, path.string(), ": architecture \"",
              field("architecture"), "\" is not mobilenet_v2_transfer");
  std::vector<std::string> classes;
  std::stringstream list(field("classes"));
  for (std::string c; std::getline(list, c, ',');) classes.push_back(c);
  int size = 0;
  try {
    size = std::stoi(field("input_size"));
  } catch (const std::exception&) {
    throw FormatError(str_cat(path.string(), ": input_size \"", field("input_size"), "\" is not a number"));
  }
  TransferModel m = build_transfer_model(size, field("head"), classes, parse_preprocessing(field("preprocessing")));
  nn::load_weights(*m.model, path);
  return m;
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TrainOutcome fit_and_evaluate(std::shared_ptr<nn::Module> model, nn::BatchSource& train, nn::BatchSource& val,
                              const TrainOptions& options, std::int64_t num_classes, const ResumePoint& resume) {
  nn::Trainer trainer(std::move(model));
  trainer.compile(std::make_shared<nn::Adam>(options.learning_rate), nn::Loss::categorical_crossentropy(),
                  {"accuracy"});
  // Data-parallel: every rank trains and validates on its rows of each global batch.
  const int rank = options.group ? options.group->rank() : 0, ranks = options.group ? options.group->size() : 1;
  if (options.group) distributed::distribute(trainer, options.group);
  distributed::ShardedBatchSource train_share(train, rank, ranks), val_share(val, rank, ranks);
  nn::FitOptions fit;
  fit.epochs = options.epochs;
  fit.validation = &val_share;
  fit.verbose = options.verbose;
  fit.callbacks = options.callbacks;
  TrainOutcome o;
  o.history = fit_with_checkpoints(trainer, train_share, fit, options.checkpoints, resume);
  o.resumed_epochs = resume.epoch;
  PETAL_CHECK(!o.history.epochs.empty(), ValueError, "training stopped before the first epoch ended: ",
              o.history.stop_reason);
  nn::Trainer::Predictions p = trainer.predict_with_targets(val);
  o.predicted = nn::predicted_classes(p.outputs);
  o.confusion = nn::confusion_matrix(nn::target_classes(p.targets), o.predicted, num_classes);
  o.val_accuracy = o.history["val_accuracy"].empty() ? 0.0 : o.history["val_accuracy"].back();
  o.images_per_second = o.history.samples_per_second();
  return o;
}

}  // namespace

// The frozen prefix's features of every row of `source`, in order; with a
// group of several ranks each computes its rows of every batch and the ranks
// exchange them (all-gather), so the cache pass is split across the ranks.
static nn::CachedFeatures cache_features_split(nn::Sequential& model, std::size_t prefix, nn::BatchSource& source,
                                        const std::shared_ptr<distributed::ProcessGroup>& group) {
  if (!group || group->size() == 1) return nn::cache_features(model, prefix, source);
  const int rank = group->rank(), ranks = group->size();
  // The batch sizes, to undo the rank-major order of the gathered rows.
  std::vector<std::int64_t> batch_rows;
  source.begin_epoch(0);
  while (std::optional<nn::Batch> batch = source.next()) batch_rows.push_back(batch->size());
  distributed::ShardedBatchSource mine(source, rank, ranks);
  nn::CachedFeatures local = nn::cache_features(model, prefix, mine);
  const Tensor features = group->all_gather(local.features), targets = group->all_gather(local.targets);
  // Row i of batch b, held by rank r = the share it falls in, sits at
  // (rows of ranks before r) + (rows of r in batches before b) + (i - begin).
  std::vector<std::int64_t> rank_start(static_cast<std::size_t>(ranks) + 1, 0);
  for (int r = 0; r < ranks; ++r) {
    std::int64_t rows = 0;
    for (std::int64_t b : batch_rows) rows += b * (r + 1) / ranks - b * r / ranks;
    rank_start[static_cast<std::size_t>(r) + 1] = rank_start[static_cast<std::size_t>(r)] + rows;
  }
  std::vector<std::int64_t> order, seen(static_cast<std::size_t>(ranks), 0);
  for (std::int64_t b : batch_rows) {
    for (int r = 0; r < ranks; ++r) {
      const std::int64_t begin = b * r / ranks, end = b * (r + 1) / ranks;
      for (std::int64_t i = begin; i < end; ++i)
        order.push_back(rank_start[static_cast<std::size_t>(r)] + seen[static_cast<std::size_t>(r)] + (i - begin));
      seen[static_cast<std::size_t>(r)] += end - begin;
    }
  }
  const Tensor index = from_vector(order);
  return {ops::take(features, index, 0), ops::take(targets, index, 0), std::move(local.batch_rows),
          std::move(local.batch_seconds)};
}

TrainOutcome train_transfer_model(TransferModel& m, const LabeledImages& train, const LabeledImages& val,
                                  const TrainOptions& options) {
  const auto num_classes = static_cast<std::int64_t>(m.classes.size());
  const Tensor train_targets = one_hot(train.classes, num_classes), val_targets = one_hot(val.classes, num_classes);
  ImageRowsSource val_images(val, val_targets, options.batch, false, options.seed, false, m.scale, false);
  nn::Sequential& model = *m.model;
  const std::size_t prefix = nn::frozen_prefix_length(model);
  const bool cache = options.allow_cache && !options.augment && prefix > 0 && prefix < model.layers().size();
  const bool quiet = options.verbose == nn::Verbosity::Quiet;
  const ResumePoint resume = find_resume_point(options.checkpoints);
  const bool trained_already = resume.path && resume.epoch >= options.epochs;
  if (!cache) {
    if (!quiet)
      std::printf("feature cache: off (%s)\n", options.augment       ? "augmentation changes the images every epoch"
                                               : !options.allow_cache ? "--no-cache"
                                                                      : "no frozen leading layers");
    ImageRowsSource train_images(train, train_targets, options.batch, true, options.seed, true, m.scale,
                                 options.augment);
    return fit_and_evaluate(m.model, train_images, val_images, options, num_classes, resume);
  }
  const auto start = Clock::now();
  nn::CachedFeatures train_features;
  if (!trained_already) {
    ImageRowsSource train_once(train, train_targets, options.batch, false, options.seed, false, m.scale, false);
    train_features = cache_features_split(model, prefix, train_once, options.group);
  }
  nn::CachedFeatures val_features = cache_features_split(model, prefix, val_images, options.group);
  if (trained_already) train_features = val_features;  // never read: the checkpoint has every epoch
  const double cache_seconds = seconds_since(start);
  const double images = static_cast<double>((trained_already ? 0 : train.size()) + val.size());
  // The pass's batches of the full size together, for their median rate.
  nn::CachedFeatures timings;
  for (const nn::CachedFeatures* f : {&train_features, &val_features}) {
    if (trained_already && f == &train_features) continue;
    timings.batch_rows.insert(timings.batch_rows.end(), f->batch_rows.begin(), f->batch_rows.end());
    timings.batch_seconds.insert(timings.batch_seconds.end(), f->batch_seconds.begin(), f->batch_seconds.end());
  }
  // Full batches have the first batch's rows (with several ranks, this
  // rank's share of a global batch).
  const std::int64_t full_rows = timings.batch_rows.empty() ? options.batch : timings.batch_rows.front();
  const double median_rate = nn::median_batch_rate(timings, full_rows);
  if (!quiet)
    std::printf("feature cache: on: the frozen first %zu layer(s) ran once per image (%.0f images in %.1fs, %.0f img/s; "
                "median batch of %d: %.0f img/s); the head trains from the cache\n",
                prefix, images, cache_seconds, images / cache_seconds, static_cast<int>(full_rows), median_rate);
  nn::TensorBatchSource train_source(train_features.features, train_features.targets, options.batch, true,
                                     options.seed, true);
  nn::TensorBatchSource val_source(val_features.features, val_features.targets, options.batch);
  TrainOutcome o =
      fit_and_evaluate(nn::head_of(model, prefix), train_source, val_source, options, num_classes, resume);
  o.cache = true;
  o.cache_seconds = cache_seconds;
  o.cache_median_batch_rate = median_rate;
  // Only the training images' share of the cache pass is training work.
  const double train_share = trained_already ? 0.0 : cache_seconds * static_cast<double>(train.size()) / images;
  o.images_per_second = static_cast<double>(o.history.train_samples) / (o.history.train_seconds + train_share);
  return o;
}

}  // namespace petal::examples
