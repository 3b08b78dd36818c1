// An input pipeline in the spirit of tf.data:
//
//   Dataset ds = Dataset::from_tfrecords(split.training);
//   ds.map(preprocess).shuffle(2048, /*seed=*/42).batch(64, /*drop_remainder=*/true)
//     .output_float(PixelScale::MinusOneOne).prefetch(2).num_parallel_calls(2);
//   for (int epoch = 0; epoch < 10; ++epoch) {
//     ds.begin_epoch();
//     while (auto batch = ds.next()) train_step(batch->images, batch->labels);
//   }
//
// Stages: a reader thread interleaves records from several files
// (num_parallel_reads), passes them through a seeded shuffle buffer and
// groups them into batches; N worker threads map (parse + decode + augment)
// whole batches into pinned NHWC tensors; up to `prefetch` finished batches
// wait for the consumer. Deterministic mode hands batches out in order;
// otherwise whichever batch is ready first goes out.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "data/image.hpp"
#include "data/sample_map.hpp"

namespace petal::data {

struct Batch {
  Tensor images;  // [B, H, W, C] uint8 or float32
  Tensor labels;  // [B] int64, or [B, num_classes] float32 when one-hot
  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

class Dataset {
 public:
  // Records of TFRecord files holding tf.train.Examples (read in the given order
  // unless shuffled).
  static Dataset from_tfrecords(std::vector<std::filesystem::path> files);
  // Files matching a glob pattern, sorted.
  static Dataset from_tfrecord_glob(const std::string& pattern);
  // A folder of class subfolders of images (JPEG or PNG); labels follow the
  // sorted subfolder names (see class_names()).
  static Dataset from_image_folder(const std::filesystem::path& root);

  Dataset(Dataset&&) noexcept;
  Dataset& operator=(Dataset&&) noexcept;
  ~Dataset();  // stops and joins every thread

  // ---- configuration; each call stops a pass in progress ----
  Dataset& map(const Preprocess& preprocess);  // default: Preprocess{}
  Dataset& map(MapFn fn);
  // Shuffle buffer of buffer_size records (<= 1: no shuffling), reshuffled every
  // pass; with shuffle_files the file order is shuffled too. The seed also
  // drives augmentation.
  Dataset& shuffle(std::size_t buffer_size, std::uint64_t seed, bool shuffle_files = true);
  Dataset& seed(std::uint64_t seed);
  Dataset& batch(std::int64_t batch_size, bool drop_remainder = false);
  // Passes over the data per begin_epoch(); -1 repeats forever (the batches
  // then run across the boundaries between passes, as with tf.data's repeat().batch()).
  Dataset& repeat(std::int64_t count = -1);
  Dataset& prefetch(int batches);
  Dataset& num_parallel_calls(int threads);  // map workers (< 1: number of cores)
  Dataset& num_parallel_reads(int files);    // files read at once, records interleaved
  Dataset& deterministic(bool keep_order);
  Dataset& output_uint8();                   // the default
  Dataset& output_float(PixelScale scale);
  Dataset& one_hot(int num_classes);         // 0: int64 labels (the default)

  // ---- iteration ----
  // Starts a pass (stopping any pass in progress), except that a dataset that
  // repeats forever keeps its running stream: with steps_per_epoch an "epoch"
  // is then just the next steps of it, as in Keras.
  void begin_epoch();
  // Starts pass `pass` (0-based) as it would have run in order: the same file
  // order, shuffle and augmentation as the pass-th begin_epoch() of a fresh
  // dataset, so a run resumed at an epoch sees the batches of the
  // uninterrupted run. Later begin_epoch() calls continue from pass + 1. A
  // dataset that repeats forever starts a new stream at that pass.
  void begin_pass(std::int64_t pass);
  // The next batch, or nullopt at the end of the pass. Rethrows errors from
  // reading or mapping (naming the file and record) at the batch they hit.
  std::optional<Batch> next();
  // Stops the pass and joins the threads (also mid-epoch); begin_epoch() restarts.
  void stop();

  // Records in one pass over the data (TFRecord files are scanned once and the
  // count cached).
  std::int64_t num_records();
  // Batches in one pass over the data (repeat() not counted).
  std::int64_t steps_per_epoch();
  // Batches next() returns between begin_epoch() and the end; -1 when infinite.
  std::int64_t cardinality();
  // Passes started so far (seeds the shuffle of each pass).
  std::int64_t epochs_started() const;

  const std::vector<std::filesystem::path>& files() const;
  // Class names of an image-folder dataset (empty for TFRecords).
  const std::vector<std::string>& class_names() const;

  struct Impl;

 private:
  explicit Dataset(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace petal::data
