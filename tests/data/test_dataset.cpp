#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/example.hpp"
#include "data/jpeg.hpp"
#include "data/png.hpp"
#include "data/tfrecord.hpp"
#include "temp_dir.hpp"

using namespace petal::data;
using petal::data::testing::TempDir;

namespace {

constexpr int kSide = 4;

// Pixel value that identifies record `id` (PNG is lossless, so it survives).
std::uint8_t id_pixel(std::int64_t id) { return static_cast<std::uint8_t>((id * 5) % 256); }

std::string example_for(std::int64_t id, int side = kSide) {
  Image img(side, side, 3);
  std::fill(img.pixels.begin(), img.pixels.end(), id_pixel(id));
  img.pixels[0] = static_cast<std::uint8_t>(id % 7);  // breaks flip symmetry
  Example ex;
  ex.set_bytes("image", {encode_png(img)});
  ex.set_int64s("class", {id});
  return encode_example(ex);
}

// Five files of 7..11 records: ids 0..44 in file order.
struct Fixture {
  TempDir dir;
  std::vector<std::filesystem::path> files;
  std::int64_t total = 0;
  Fixture() {
    for (int f = 0; f < 5; ++f) {
      files.push_back(dir / ("part" + std::to_string(f) + ".tfrec"));
      TFRecordWriter writer(files.back());
      for (int r = 0; r < 7 + f; ++r) writer.write(example_for(total++));
    }
  }
};

// Runs one pass, checking every batch's images against its labels.
std::vector<std::int64_t> run_epoch(Dataset& ds, std::vector<std::int64_t>* batch_sizes = nullptr) {
  std::vector<std::int64_t> ids;
  ds.begin_epoch();
  while (auto batch = ds.next()) {
    REQUIRE(batch->images.dim() == 4);
    REQUIRE(batch->labels.dim() == 1);
    const std::int64_t n = batch->size();
    REQUIRE(batch->labels.size(0) == n);
    if (batch_sizes) batch_sizes->push_back(n);
    const auto labels = batch->labels.to_vector<std::int64_t>();
    const auto pixels = batch->images.to_vector<std::uint8_t>();
    const std::size_t per_image = pixels.size() / static_cast<std::size_t>(n);
    for (std::int64_t i = 0; i < n; ++i) {
      // Pixel 1 is untouched by the id % 7 marker in pixel 0.
      REQUIRE(pixels[static_cast<std::size_t>(i) * per_image + 1] == id_pixel(labels[static_cast<std::size_t>(i)]));
      ids.push_back(labels[static_cast<std::size_t>(i)]);
    }
  }
  return ids;
}

std::vector<std::int64_t> sorted(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::int64_t> iota_ids(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

}  // namespace

TEST_CASE("batches have the right shapes and every record appears once per epoch") {
  Fixture fx;
  Dataset ds = Dataset::from_tfrecords(fx.files);
  ds.batch(8).num_parallel_calls(2).num_parallel_reads(3);
  CHECK(ds.num_records() == 45);
  CHECK(ds.steps_per_epoch() == 6);
  CHECK(ds.cardinality() == 6);
  std::vector<std::int64_t> sizes;
  const auto ids = run_epoch(ds, &sizes);
  CHECK(sizes == std::vector<std::int64_t>{8, 8, 8, 8, 8, 5});
  CHECK(sorted(ids) == iota_ids(45));

  ds.begin_epoch();
  auto first = ds.next();
  REQUIRE(first);
  CHECK(first->images.shape() == petal::Shape{8, kSide, kSide, 3});
  CHECK(first->images.dtype() == petal::DType::UInt8);
  CHECK(first->labels.dtype() == petal::DType::Int64);

  SUBCASE("drop_remainder") {
    ds.batch(8, true);
    CHECK(ds.steps_per_epoch() == 5);
    sizes.clear();
    const auto kept = run_epoch(ds, &sizes);
    CHECK(sizes == std::vector<std::int64_t>{8, 8, 8, 8, 8});
    CHECK(std::set<std::int64_t>(kept.begin(), kept.end()).size() == 40);
  }
}

TEST_CASE("deterministic order: file order, interleaving, any worker count") {
  Fixture fx;
  Dataset sequential = Dataset::from_tfrecords(fx.files);
  sequential.batch(4).num_parallel_reads(1).num_parallel_calls(2);
  CHECK(run_epoch(sequential) == iota_ids(45));

  Dataset interleaved = Dataset::from_tfrecords(fx.files);
  interleaved.batch(4).num_parallel_reads(2).num_parallel_calls(1);
  const auto order = run_epoch(interleaved);
  // part0 (ids 0..6) and part1 (7..14) alternate, record by record.
  CHECK(std::vector<std::int64_t>(order.begin(), order.begin() + 6) == std::vector<std::int64_t>{0, 7, 1, 8, 2, 9});
  CHECK(sorted(order) == iota_ids(45));
  interleaved.num_parallel_calls(3);
  CHECK(run_epoch(interleaved) == order);
}

TEST_CASE("shuffling with a seed is reproducible and reshuffles every epoch") {
  Fixture fx;
  auto make = [&](std::uint64_t seed, int workers) {
    Dataset ds = Dataset::from_tfrecords(fx.files);
    ds.shuffle(16, seed).batch(5).num_parallel_calls(workers);
    return ds;
  };
  Dataset a = make(42, 1), b = make(42, 3), c = make(43, 2);
  const auto a1 = run_epoch(a), a2 = run_epoch(a);
  const auto b1 = run_epoch(b), b2 = run_epoch(b);
  const auto c1 = run_epoch(c);
  CHECK(a1 == b1);
  CHECK(a2 == b2);
  CHECK(a1 != a2);
  CHECK(a1 != c1);
  CHECK(a1 != iota_ids(45));
  for (const auto* ids : {&a1, &a2, &c1}) CHECK(sorted(*ids) == iota_ids(45));
}

TEST_CASE("non-deterministic mode delivers the same records") {
  Fixture fx;
  Dataset ds = Dataset::from_tfrecords(fx.files);
  ds.shuffle(8, 1).batch(3).deterministic(false).num_parallel_calls(3).prefetch(4);
  CHECK(sorted(run_epoch(ds)) == iota_ids(45));
}

TEST_CASE("float32 output, one-hot labels") {
  Fixture fx;
  Dataset ds = Dataset::from_tfrecords(fx.files);
  ds.batch(45).output_float(PixelScale::MinusOneOne).one_hot(45).num_parallel_reads(1);
  ds.begin_epoch();
  auto batch = ds.next();
  REQUIRE(batch);
  CHECK(batch->images.dtype() == petal::DType::Float32);
  CHECK(batch->labels.shape() == petal::Shape{45, 45});
  const auto pixels = batch->images.to_vector<float>();
  const auto labels = batch->labels.to_vector<float>();
  const std::size_t per_image = kSide * kSide * 3;
  for (std::int64_t id = 0; id < 45; ++id) {
    CHECK(pixels[static_cast<std::size_t>(id) * per_image + 1] == doctest::Approx(id_pixel(id) / 127.5 - 1.0));
    float row_sum = 0;
    for (int k = 0; k < 45; ++k) row_sum += labels[static_cast<std::size_t>(id * 45 + k)];
    CHECK(row_sum == 1.0f);
    CHECK(labels[static_cast<std::size_t>(id * 45 + id)] == 1.0f);
  }
  CHECK_FALSE(ds.next());

  ds.output_float(PixelScale::ZeroOne).one_hot(10);  // ids up to 44 do not fit 10 classes
  ds.begin_epoch();
  CHECK_THROWS_AS(ds.next(), petal::ValueError);
}

TEST_CASE("repeat: finite counts and an endless stream") {
  Fixture fx;
  Dataset twice = Dataset::from_tfrecords(fx.files);
  twice.batch(8).repeat(2);
  CHECK(twice.cardinality() == 12);  // 90 records
  const auto ids = run_epoch(twice);
  CHECK(ids.size() == 90);
  std::map<std::int64_t, int> seen;
  for (auto id : ids) ++seen[id];
  for (auto& [id, count] : seen) CHECK(count == 2);

  Dataset forever = Dataset::from_tfrecords(fx.files);
  forever.batch(10, true).repeat().shuffle(20, 3);
  CHECK(forever.cardinality() == -1);
  CHECK(forever.steps_per_epoch() == 4);
  std::vector<std::int64_t> stream;
  for (int epoch = 0; epoch < 3; ++epoch) {
    forever.begin_epoch();  // keeps the running stream
    for (int step = 0; step < 4; ++step) {
      auto batch = forever.next();
      REQUIRE(batch);
      for (auto id : batch->labels.to_vector<std::int64_t>()) stream.push_back(id);
    }
  }
  CHECK(forever.epochs_started() == 1);
  CHECK(stream.size() == 120);
  CHECK(std::set<std::int64_t>(stream.begin(), stream.end()).size() == 45);
}

TEST_CASE("stopping or destroying mid-epoch joins every thread") {
  Fixture fx;
  {
    Dataset ds = Dataset::from_tfrecords(fx.files);
    ds.batch(2).prefetch(1).num_parallel_calls(2).repeat();
    ds.begin_epoch();
    REQUIRE(ds.next());
  }  // destroyed with the reader blocked on a full queue
  Dataset ds = Dataset::from_tfrecords(fx.files);
  ds.batch(2).prefetch(1).num_parallel_calls(2);
  ds.begin_epoch();
  REQUIRE(ds.next());
  ds.stop();
  CHECK(sorted(run_epoch(ds)) == iota_ids(45));  // a fresh, complete pass
  ds.begin_epoch();
  REQUIRE(ds.next());
  ds.begin_epoch();  // a finite dataset restarts
  CHECK(run_epoch(ds).size() == 45);
  Dataset moved = std::move(ds);
  CHECK(run_epoch(moved).size() == 45);
}

TEST_CASE("bad records surface as errors naming the file and record") {
  Fixture fx;
  SUBCASE("a bad image inside a valid record") {
    const auto bad = fx.dir / "badimage.tfrec";
    {
      TFRecordWriter writer(bad);
      writer.write(example_for(100));
      writer.write(example_for(101));
      Example ex;
      ex.set_bytes("image", {std::string("\xff\xd8\xff\xe0 truncated", 15)});
      ex.set_int64s("class", {102});
      writer.write(encode_example(ex));
    }
    Dataset ds = Dataset::from_tfrecords({bad});
    ds.batch(2).num_parallel_calls(2);
    ds.begin_epoch();
    REQUIRE(ds.next());  // records 0 and 1 are fine
    try {
      ds.next();
      FAIL("no error");
    } catch (const petal::FormatError& e) {
      CHECK(std::string(e.what()).find("badimage.tfrec: record 2 at byte") != std::string::npos);
    }
    CHECK_THROWS_AS(ds.next(), petal::FormatError);  // stays failed until restarted
    ds.begin_epoch();
    CHECK(ds.next());

    // A stream that repeats forever is restarted by begin_epoch() after a failure.
    Dataset forever = Dataset::from_tfrecords({bad});
    forever.batch(3).repeat();
    forever.begin_epoch();
    CHECK_THROWS_AS(forever.next(), petal::FormatError);
    forever.begin_epoch();
    CHECK(forever.epochs_started() == 2);
    CHECK_THROWS_AS(forever.next(), petal::FormatError);
  }
  SUBCASE("a record that is not an Example, and a missing feature") {
    const auto bad = fx.dir / "notexample.tfrec";
    {
      TFRecordWriter writer(bad);
      writer.write("\x0a\x05zz");
    }
    Dataset ds = Dataset::from_tfrecords({bad});
    ds.begin_epoch();
    CHECK_THROWS_WITH_AS(ds.next(), doctest::Contains("notexample.tfrec: record 0 at byte 0: Example:"),
                         petal::FormatError);
    Preprocess p;
    p.label_key = "label";
    Dataset missing = Dataset::from_tfrecords({fx.files[0]});
    missing.map(p);
    missing.begin_epoch();
    CHECK_THROWS_WITH_AS(missing.next(), doctest::Contains("no feature 'label'; available: class, image"),
                         petal::FormatError);
  }
  SUBCASE("a corrupt file after good ones") {
    std::string bytes = petal::data::testing::read_bytes(fx.files[1]);
    bytes[bytes.size() / 2] ^= 1;
    petal::data::testing::write_bytes(fx.files[1], bytes);
    Dataset ds = Dataset::from_tfrecords(fx.files);
    ds.batch(4).num_parallel_reads(1);
    ds.begin_epoch();
    int good = 0;
    try {
      while (ds.next()) ++good;
      FAIL("no error");
    } catch (const RecordError& e) {
      CHECK(e.file().find("part1.tfrec") != std::string::npos);
    }
    CHECK(good >= 1);  // batches before the bad record still came out
  }
}

TEST_CASE("images of different sizes need a resize to be batched") {
  TempDir dir;
  const auto path = dir / "sizes.tfrec";
  {
    TFRecordWriter writer(path);
    writer.write(example_for(0, 4));
    writer.write(example_for(1, 6));
  }
  Dataset ds = Dataset::from_tfrecords({path});
  ds.batch(2);
  ds.begin_epoch();
  CHECK_THROWS_WITH_AS(ds.next(), doctest::Contains("record 1"), petal::ShapeError);
  Preprocess p;
  p.height = 5;
  p.width = 5;
  p.random_flip = true;
  p.brightness_max_delta = 0.1f;
  ds.map(p).seed(9);
  ds.begin_epoch();
  auto batch = ds.next();
  REQUIRE(batch);
  CHECK(batch->images.shape() == petal::Shape{2, 5, 5, 3});
  const auto first = batch->images.to_vector<std::uint8_t>();
  // Augmentation is seeded per (seed, pass, element): the second pass of a
  // dataset with the same seed gives the same pixels whatever the threads.
  Dataset again = Dataset::from_tfrecords({path});
  again.batch(2).map(p).seed(9).num_parallel_calls(1);
  again.begin_epoch();
  const auto pass0 = again.next()->images.to_vector<std::uint8_t>();
  again.begin_epoch();
  const auto pass1 = again.next()->images.to_vector<std::uint8_t>();
  CHECK(pass1 == first);
  CHECK(pass0 != pass1);
}

TEST_CASE("image folder source: class subfolders, labels in sorted order") {
  TempDir dir;
  const std::vector<std::string> classes = {"cats", "dogs", "owls"};
  int n = 0;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::filesystem::create_directory(dir / classes[c]);
    for (int i = 0; i < 3; ++i, ++n) {
      Image img(10 + i, 8, 3);
      std::fill(img.pixels.begin(), img.pixels.end(), static_cast<std::uint8_t>(c * 100));
      const bool jpeg = i % 2 == 0;
      petal::data::testing::write_bytes(dir / classes[c] / ("img" + std::to_string(i) + (jpeg ? ".jpg" : ".png")),
                                        jpeg ? encode_jpeg(img) : encode_png(img));
    }
  }
  petal::data::testing::write_bytes(dir / "cats" / "notes.txt", "ignored");
  Dataset ds = Dataset::from_image_folder(dir.path());
  CHECK(ds.class_names() == classes);
  CHECK(ds.num_records() == 9);
  Preprocess p;
  p.height = 8;
  p.width = 8;
  p.resize = ResizeMode::ShortSideCenterCrop;
  ds.map(p).batch(4).shuffle(9, 5);
  std::map<std::int64_t, int> per_class;
  ds.begin_epoch();
  while (auto batch = ds.next()) {
    const auto labels = batch->labels.to_vector<std::int64_t>();
    const auto pixels = batch->images.to_vector<std::uint8_t>();
    for (std::size_t i = 0; i < labels.size(); ++i) {
      ++per_class[labels[i]];
      CHECK(std::abs(int(pixels[i * 8 * 8 * 3]) - int(labels[i] * 100)) <= 2);
    }
  }
  CHECK(per_class == std::map<std::int64_t, int>{{0, 3}, {1, 3}, {2, 3}});
  CHECK_THROWS_AS(Dataset::from_image_folder(dir / "missing"), petal::IOError);
}
