// docs/guide.md, "Data pipelines": TFRecord -> tf.train.Example -> JPEG ->
// augmentation by hand, then the same as a Dataset feeding fit(). Uses the
// flowers shards (scripts/fetch_assets.sh, or PETAL_ASSETS); exits 77
// (skipped) without them.
#include <cmath>
#include <cstdio>
#include <iostream>

#include <petal.hpp>

using namespace petal;

int main() {
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };
  std::filesystem::path flowers;
  try {
    // [guide:data_find]
    // The command-line option if any, else PETAL_ASSETS, the source tree's
    // assets/, ./assets (IOError listing them when none has it).
    flowers = find_asset("flowers-192");
    // [/guide:data_find]
  } catch (const IOError& e) {
    std::printf("SKIP: %s\n", e.what());
    return 77;
  }

  // [guide:data_by_hand]
  std::vector<std::filesystem::path> shards = data::glob_files((flowers / "*.tfrec").string());
  data::TFRecordReader reader(shards.front());
  std::string payload;
  reader.read(payload);  // one record: a serialized tf.train.Example

  data::Example example = data::decode_example(payload);
  std::cout << "features: " << example.key_list() << "\n";
  data::Image image = data::decode_jpeg(example.bytes("image"));  // uint8 HWC, RGB
  std::int64_t label = example.int64("class");
  std::cout << image.shape_str() << " " << data::kFlowerClasses.at(static_cast<std::size_t>(label)) << "\n";

  Generator rng(42);
  data::random_flip_horizontal(image, rng);
  data::random_brightness(image, /*max_delta=*/0.1f, rng);
  data::Image small = data::resize_bilinear(image, 96, 96);
  Tensor pixels = data::image_to_float_tensor(small, data::PixelScale::MinusOneOne);  // [96, 96, 3]
  // [/guide:data_by_hand]
  check(image.channels == 3 && small.height == 96, "decoded and resized");
  check(pixels.shape() == Shape({96, 96, 3}) && pixels.dtype() == DType::Float32, "float pixels");

  // [guide:data_pipeline]
  // The lab's split: the first 3 shards by name for validation.
  data::FileSplit split = data::split_files(shards, /*validation_files=*/3);

  // Parse, decode, resize and augment on worker threads; shuffle; batch.
  data::Preprocess augment{.height = 96, .width = 96, .random_flip = true, .brightness_max_delta = 0.1f};
  data::Dataset training = data::Dataset::from_tfrecords(split.training);
  training.map(augment)
      .shuffle(/*buffer_size=*/256, /*seed=*/42)
      .batch(16, /*drop_remainder=*/true)
      .output_float(data::PixelScale::MinusOneOne)  // float32 in [-1, 1]; the default is uint8
      .prefetch(2);

  data::Dataset validation = data::Dataset::from_tfrecords(split.validation);
  validation.map(data::Preprocess{.height = 96, .width = 96})
      .batch(16)
      .output_float(data::PixelScale::MinusOneOne);

  // The Trainer reads BatchSources: DatasetSource adapts a Dataset (here
  // 4 batches make an "epoch", to keep the example short).
  nn::DatasetSource train_source(training, /*steps_per_epoch=*/4);
  nn::DatasetSource validation_source(validation);

  auto inputs = nn::Input({96, 96, 3});
  auto h = nn::layer<nn::Conv2D>(8, 3, nn::ConvOptions{.strides = 2, .activation = "relu"})(inputs);
  h = nn::layer<nn::GlobalAveragePooling2D>()(h);
  auto outputs = nn::layer<nn::Dense>(5, "softmax")(h);
  auto model = std::make_shared<nn::Model>(inputs, outputs, "tiny_flowers");

  nn::Trainer trainer(model);
  trainer.compile(std::make_shared<nn::Adam>(1e-3), nn::Loss::sparse_categorical_crossentropy());
  trainer.fit(train_source, {.epochs = 2, .validation = &validation_source, .validation_steps = 2});
  // [/guide:data_pipeline]

  training.begin_epoch();
  std::optional<data::Batch> batch = training.next();
  check(batch && batch->images.shape() == Shape({16, 96, 96, 3}), "batch shape");
  check(batch && batch->images.dtype() == DType::Float32, "float batches");
  check(batch && batch->labels.dtype() == DType::Int64, "int64 labels");
  training.stop();
  nn::Logs scores = trainer.evaluate(validation_source, 2);
  check(std::isfinite(scores["loss"]), "finite validation loss");
  return ok ? 0 : 1;
}
