#include "data/flowers.hpp"

#include "data/file_list.hpp"

namespace petal::data {

FileSplit split_flowers_shards(const std::filesystem::path& dir, std::size_t validation_files) {
  std::vector<std::filesystem::path> files = glob_files((dir / "*.tfrec").string());
  PETAL_CHECK(validation_files >= 1 && files.size() > validation_files, IOError, "flowers folder '", dir.string(),
              "' has ", files.size(), " *.tfrec shard", files.size() == 1 ? "" : "s", ", needs at least ",
              validation_files + 1, " (", validation_files, " for validation, the rest for training)");
  return split_files(std::move(files), validation_files);
}

FlowersDatasets make_flowers_datasets(const std::filesystem::path& dir, const FlowersOptions& options) {
  const FileSplit split = split_flowers_shards(dir, options.validation_files);
  Preprocess preprocess;
  preprocess.height = options.image_size;
  preprocess.width = options.image_size;
  Preprocess train_preprocess = preprocess;
  train_preprocess.random_flip = options.augment;

  auto configure = [&](Dataset& ds, const Preprocess& p) {
    ds.map(p).batch(options.batch_size).prefetch(options.prefetch).num_parallel_calls(options.threads);
    if (options.dtype == DType::Float32) ds.output_float(options.scale);
    else ds.output_uint8();
    if (options.one_hot) ds.one_hot(static_cast<int>(kFlowerClasses.size()));
  };

  FlowersDatasets out{Dataset::from_tfrecords(split.training), Dataset::from_tfrecords(split.validation), 0, 0};
  configure(out.training, train_preprocess);
  out.training.batch(options.batch_size, /*drop_remainder=*/true).repeat().seed(options.seed);
  // The shards were shuffled when they were written; the buffer mixes
  // records across files and epochs on top of that.
  if (options.shuffle_buffer > 1) out.training.shuffle(options.shuffle_buffer, options.seed);
  configure(out.validation, preprocess);
  out.validation.deterministic(true).num_parallel_reads(1);
  out.training_steps = out.training.num_records() / options.batch_size;
  out.validation_steps = out.validation.num_records() / options.batch_size;
  return out;
}

}  // namespace petal::data
