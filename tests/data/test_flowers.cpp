// The real flowers shards (../shared/data/flowers-192): counts, schema and
// every image, checked against the numbers in the folder's README.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <string>

#include "data/example.hpp"
#include "data/file_list.hpp"
#include "data/flowers.hpp"
#include "data/jpeg.hpp"
#include "data/tfrecord.hpp"
#include "temp_dir.hpp"

using namespace petal::data;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Per-shard class counts (daisy / dandelion / roses / sunflowers / tulips) from the README.
const std::map<std::string, std::array<int, 5>> kShardCounts = {
    {"flowers00-230", {41, 52, 37, 52, 48}}, {"flowers01-230", {47, 52, 42, 34, 55}},
    {"flowers02-230", {42, 48, 36, 60, 44}}, {"flowers03-230", {44, 51, 30, 45, 60}},
    {"flowers04-230", {39, 52, 37, 50, 52}}, {"flowers05-230", {41, 63, 28, 42, 56}},
    {"flowers06-230", {43, 57, 27, 40, 63}}, {"flowers07-230", {42, 55, 46, 43, 44}},
    {"flowers08-230", {39, 59, 49, 40, 43}}, {"flowers09-230", {46, 51, 39, 46, 48}},
    {"flowers10-230", {40, 60, 47, 37, 46}}, {"flowers11-230", {27, 66, 41, 47, 49}},
    {"flowers12-230", {38, 56, 46, 44, 46}}, {"flowers13-230", {35, 62, 40, 46, 47}},
    {"flowers14-230", {41, 59, 42, 36, 52}}, {"flowers15-220", {28, 55, 54, 37, 46}},
};

}  // namespace

TEST_CASE("flowers shards: 3670 records in 16 files with the README's class counts; images decode") {
  const auto files = glob_files((petal::data::testing::flowers_dir() / "*.tfrec").string());
  REQUIRE(files.size() == 16);
  std::array<int, 5> totals{};
  std::int64_t records = 0;
  std::int64_t decoded = 0;
  Image image;
  for (const auto& file : files) {
    const std::string shard = file.stem().string();
    REQUIRE(kShardCounts.count(shard) == 1);
    std::array<int, 5> counts{};
    TFRecordReader reader(file);
    std::string payload;
    while (reader.read(payload)) {
      const std::int64_t index = reader.next_record_index() - 1;
      const Example ex = decode_example(payload);
      const std::int64_t label = ex.int64("class");
      REQUIRE(label >= 0);
      REQUIRE(label < 5);
      REQUIRE(ex.bytes("label") == kFlowerClasses[static_cast<std::size_t>(label)]);
      REQUIRE(ex.int64_list("size") == std::vector<std::int64_t>{192, 192});
      ++counts[static_cast<std::size_t>(label)];
      ++records;
      // Every image in the normal build; every 10th under the sanitizers
      // (decoding runs ~20x slower there). Headers are always read.
      const std::string& jpeg = ex.bytes("image");
      const JpegInfo info = read_jpeg_info(jpeg);
      REQUIRE(info.width == 192);
      REQUIRE(info.height == 192);
      if (!kSanitized || index % 10 == 0) {
        decode_jpeg_into(jpeg, image, {}, file.string());
        REQUIRE(image.shape_str() == "192x192x3");
        ++decoded;
      }
    }
    CHECK_MESSAGE(counts == kShardCounts.at(shard), shard);
    // The file name ends in its record count ("flowers15-220").
    CHECK(reader.next_record_index() == std::stoi(shard.substr(shard.find('-') + 1)));
    for (int k = 0; k < 5; ++k) totals[k] += counts[k];
  }
  CHECK(records == 3670);
  CHECK(totals == std::array<int, 5>{633, 898, 641, 699, 799});
  CHECK(decoded == (kSanitized ? decoded : 3670));
  MESSAGE("decoded " << decoded << " of " << records << " images");
}

TEST_CASE("the lab's split: 3 validation shards = 690 images, 13 training = 2980") {
  const auto dir = petal::data::testing::flowers_dir();
  const FileSplit split = split_files(glob_files((dir / "*.tfrec").string()), 3);
  REQUIRE(split.validation.size() == 3);
  CHECK(split.validation[0].filename() == "flowers00-230.tfrec");
  CHECK(split.validation[2].filename() == "flowers02-230.tfrec");
  CHECK(split.training.size() == 13);
  std::int64_t validation = 0, training = 0;
  for (const auto& f : split.validation) validation += count_tfrecords(f);
  for (const auto& f : split.training) training += count_tfrecords(f);
  CHECK(validation == 690);
  CHECK(training == 2980);

  FlowersOptions options;
  options.threads = 2;
  FlowersDatasets flowers = make_flowers_datasets(dir, options);
  CHECK(flowers.training_steps == 46);
  CHECK(flowers.validation_steps == 10);
  CHECK(flowers.validation.steps_per_epoch() == 11);  // the last batch holds 50
  CHECK(flowers.training.cardinality() == -1);
  CHECK(flowers.validation.cardinality() == 11);
  auto batch = flowers.training.next();
  REQUIRE(batch);
  CHECK(batch->images.shape() == petal::Shape{64, 192, 192, 3});
  CHECK(batch->images.dtype() == petal::DType::Float32);
  CHECK(batch->labels.shape() == petal::Shape{64});
  const auto pixels = batch->images.to_vector<float>();
  const auto [lo, hi] = std::minmax_element(pixels.begin(), pixels.end());
  CHECK(*lo >= -1.0f);
  CHECK(*hi <= 1.0f);
  CHECK(*hi > *lo);
  flowers.training.stop();  // mid-epoch: threads joined, nothing leaks
}
