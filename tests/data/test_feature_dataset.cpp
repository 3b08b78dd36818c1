#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "data/example.hpp"
#include "data/feature_dataset.hpp"
#include "data/png.hpp"
#include "data/tfrecord.hpp"
#include "temp_dir.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::data;
using petal::data::testing::TempDir;

namespace {

// Element i: {"id": int64 scalar i, "v": float32 [2] {i, -i}}.
FeatureDataset range_ds(std::int64_t n, std::int64_t start = 0) {
  std::vector<std::int64_t> ids;
  std::vector<float> vs;
  for (std::int64_t i = start; i < start + n; ++i) {
    ids.push_back(i);
    vs.push_back(static_cast<float>(i));
    vs.push_back(static_cast<float>(-i));
  }
  return FeatureDataset::from_tensors({{"id", from_vector(ids)}, {"v", from_vector(vs, {n, 2})}});
}

std::vector<std::int64_t> ids(const FeatureDataset& ds, std::int64_t pass = 0, const std::string& key = "id") {
  std::vector<std::int64_t> out;
  for (const Features& e : ds.collect(pass)) out.push_back(e.at(key).item<std::int64_t>());
  return out;
}

using V = std::vector<std::int64_t>;

}  // namespace

TEST_CASE("from_tensors slices along axis 0; cardinality; shapes must agree") {
  FeatureDataset ds = range_ds(4);
  CHECK(ds.cardinality() == 4);
  const auto elems = ds.collect();
  REQUIRE(elems.size() == 4);
  CHECK(elems[2].at("id").shape() == Shape{});
  CHECK(elems[2].at("v").shape() == Shape{2});
  CHECK(elems[2].at("v").to_vector<float>() == std::vector<float>{2, -2});
  const std::string msg = test::thrown_message<ShapeError>(
      [] { FeatureDataset::from_tensors({{"a", zeros({3, 2})}, {"b", zeros({4})}}); });
  CHECK(msg.find("\"b\"") != std::string::npos);
  CHECK(msg.find("[4]") != std::string::npos);
}

TEST_CASE("take, skip, filter, map keep the order") {
  FeatureDataset ds = range_ds(10);
  CHECK(ids(ds.take(3)) == V{0, 1, 2});
  CHECK(ids(ds.skip(7)) == V{7, 8, 9});
  CHECK(ids(ds.skip(20)).empty());
  CHECK(ids(ds.take(-1)) == ids(ds));
  CHECK(ids(ds.skip(2).take(3)) == V{2, 3, 4});
  CHECK(ds.skip(2).take(3).cardinality() == 3);
  auto even = ds.filter([](const Features& e) { return e.at("id").item<std::int64_t>() % 2 == 0; });
  CHECK(ids(even) == V{0, 2, 4, 6, 8});
  CHECK(even.cardinality() == FeatureDataset::kUnknown);
  auto doubled = ds.map([](Features e) {
    e["id2"] = from_vector(std::vector<std::int64_t>{e.at("id").item<std::int64_t>() * 2}, {});
    return e;
  });
  CHECK(ids(doubled, 0, "id2") == V{0, 2, 4, 6, 8, 10, 12, 14, 16, 18});
}

TEST_CASE("map with parallel calls gives the serial result in order; errors propagate") {
  auto fn = [](Features e) {
    const std::int64_t id = e.at("id").item<std::int64_t>();
    e["sq"] = from_vector(std::vector<std::int64_t>{id * id}, {});
    return e;
  };
  const V serial = ids(range_ds(37).map(fn), 0, "sq");
  CHECK(ids(range_ds(37).map(fn, 2), 0, "sq") == serial);
  CHECK(ids(range_ds(37).map(fn, 3), 0, "sq") == serial);
  CHECK(ids(range_ds(37).map(fn, 0), 0, "sq") == serial);
  CHECK(ids(range_ds(0).map(fn, 2), 0, "sq").empty());
  auto failing = range_ds(20).map(
      [](Features e) {
        if (e.at("id").item<std::int64_t>() == 13) throw ValueError("element 13 is bad");
        return e;
      },
      2);
  const std::string msg = test::thrown_message<ValueError>([&] { failing.collect(); });
  CHECK(msg.find("element 13") != std::string::npos);
}

TEST_CASE("zip merges keys, ends with the shortest, and refuses a key clash") {
  auto a = range_ds(5);
  auto b = FeatureDataset::from_tensors({{"w", from_vector(std::vector<float>{10, 11, 12})}});
  auto z = FeatureDataset::zip({a, b});
  CHECK(z.cardinality() == 3);
  const auto elems = z.collect();
  REQUIRE(elems.size() == 3);
  CHECK(elems[1].size() == 3);
  CHECK(elems[1].at("id").item<std::int64_t>() == 1);
  CHECK(elems[1].at("w").item<float>() == 11.0f);
  const std::string msg =
      test::thrown_message<ValueError>([&] { FeatureDataset::zip({a, range_ds(2)}).collect(); });
  CHECK(msg.find("\"id\"") != std::string::npos);
}

TEST_CASE("interleave follows tf.data: cycle_length open inputs, block_length from each") {
  // Inputs of 3, 1, 4 and 2 elements with ids 10*k + i.
  std::vector<FeatureDataset> inputs = {range_ds(3, 0), range_ds(1, 10), range_ds(4, 20), range_ds(2, 30)};
  // As tf.data's interleave: an exhausted input's slot is refilled with the next
  // input before the cycle moves on; an end of input also ends the block.
  CHECK(ids(FeatureDataset::interleave(inputs, 2, 2)) == V{0, 1, 10, 2, 20, 21, 30, 31, 22, 23});
  CHECK(ids(FeatureDataset::interleave(inputs, 1, 1)) == V{0, 1, 2, 10, 20, 21, 22, 23, 30, 31});
  CHECK(ids(FeatureDataset::interleave(inputs, 4, 1)) == V{0, 10, 20, 30, 1, 21, 31, 2, 22, 23});
  CHECK(ids(FeatureDataset::interleave(inputs, 8, 3)) == V{0, 1, 2, 10, 20, 21, 22, 30, 31, 23});
  CHECK(FeatureDataset::interleave(inputs, 2, 2).cardinality() == 10);
  CHECK_THROWS_AS(FeatureDataset::interleave(inputs, 0, 1), ValueError);
}

TEST_CASE("interleave with a shuffle seed opens the inputs in a per-pass shuffled order") {
  std::vector<FeatureDataset> inputs;
  for (std::int64_t k = 0; k < 8; ++k) inputs.push_back(range_ds(2, 10 * k));
  auto ds = FeatureDataset::interleave(inputs, 1, 1, /*shuffle_seed=*/3);
  const V p0 = ids(ds, 0), p1 = ids(ds, 1);
  CHECK(p0 == ids(FeatureDataset::interleave(inputs, 1, 1, 3), 0));
  CHECK(p0 != p1);
  CHECK(p0 != ids(FeatureDataset::interleave(inputs, 1, 1)));
  V sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == ids(FeatureDataset::interleave(inputs, 1, 1)));
  for (std::size_t i = 0; i < p0.size(); i += 2) CHECK(p0[i + 1] == p0[i] + 1);  // each input whole, in order
}

TEST_CASE("shuffle is a permutation, deterministic per seed and pass, different across passes") {
  auto ds = range_ds(50).shuffle(16, 42);
  const V p0 = ids(ds, 0);
  V sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == ids(range_ds(50)));
  CHECK(p0 != ids(range_ds(50)));
  CHECK(ids(range_ds(50).shuffle(16, 42), 0) == p0);  // a fresh dataset, same seed
  CHECK(ids(ds, 1) != p0);
  CHECK(ids(ds, 1) == ids(range_ds(50).shuffle(16, 42), 1));
  CHECK(ids(range_ds(50).shuffle(16, 43), 0) != p0);
  CHECK(ids(range_ds(50).shuffle(1, 42)) == ids(range_ds(50)));
  // A buffer of the whole dataset can put the last element first.
  bool last_first = false;
  for (std::uint64_t s = 0; s < 40 && !last_first; ++s) last_first = ids(range_ds(10).shuffle(10, s))[0] == 9;
  CHECK(last_first);
}

TEST_CASE("batch stacks each key; drop_remainder; errors name the key and shapes") {
  auto b = range_ds(5).batch(2);
  CHECK(b.cardinality() == 3);
  const auto batches = b.collect();
  REQUIRE(batches.size() == 3);
  CHECK(batches[0].at("id").shape() == Shape{2});
  CHECK(batches[0].at("v").shape() == Shape{2, 2});
  CHECK(batches[1].at("v").to_vector<float>() == std::vector<float>{2, -2, 3, -3});
  CHECK(batches[2].at("id").to_vector<std::int64_t>() == V{4});
  CHECK(range_ds(5).batch(2, true).collect().size() == 2);
  CHECK(range_ds(5).batch(2, true).cardinality() == 2);

  std::vector<Features> ragged = {{{"img", zeros({2, 3})}}, {{"img", zeros({2, 4})}}};
  const std::string msg =
      test::thrown_message<ShapeError>([&] { FeatureDataset::from_elements(ragged).batch(2).collect(); });
  CHECK(msg.find("\"img\"") != std::string::npos);
  CHECK(msg.find("[2, 3]") != std::string::npos);
  CHECK(msg.find("[2, 4]") != std::string::npos);
  std::vector<Features> mixed = {{{"a", zeros({2})}}, {{"a", zeros({2}, DType::Int64)}}};
  CHECK_THROWS_AS(FeatureDataset::from_elements(mixed).batch(2).collect(), DTypeError);
  std::vector<Features> keys = {{{"a", zeros({2})}}, {{"b", zeros({2})}}};
  CHECK_THROWS_AS(FeatureDataset::from_elements(keys).batch(2).collect(), ValueError);
  CHECK_THROWS_AS(range_ds(3).batch(0), ValueError);
}

TEST_CASE("repeat runs the passes back to back and reshuffles each repetition") {
  CHECK(ids(range_ds(3).repeat(2)) == V{0, 1, 2, 0, 1, 2});
  CHECK(range_ds(3).repeat(2).cardinality() == 6);
  CHECK(range_ds(3).repeat().cardinality() == FeatureDataset::kInfinite);
  CHECK(ids(range_ds(3).repeat().take(7)) == V{0, 1, 2, 0, 1, 2, 0});
  CHECK_THROWS_AS(range_ds(3).repeat().collect(), ValueError);
  auto r = ids(range_ds(20).shuffle(20, 5).repeat(2));
  CHECK(V(r.begin(), r.begin() + 20) != V(r.begin() + 20, r.end()));
  CHECK(ids(range_ds(0).repeat().take(3)).empty());  // an empty input ends instead of spinning
}

TEST_CASE("cache() in memory replays the first complete pass") {
  int calls = 0;
  auto ds = range_ds(6).map([&calls](Features e) {
                         ++calls;
                         return e;
                       })
                .shuffle(6, 1)
                .cache();
  const V first = ids(ds, 0);
  CHECK(calls == 6);
  CHECK(ids(ds, 1) == first);  // frozen, not reshuffled
  CHECK(calls == 6);
  // A pass stopped early caches nothing.
  int calls2 = 0;
  auto ds2 = range_ds(6).map([&calls2](Features e) {
                          ++calls2;
                          return e;
                        })
                 .cache();
  {
    auto it = ds2.iterate(0);
    it.next();
  }
  CHECK(ids(ds2) == V{0, 1, 2, 3, 4, 5});
  CHECK(ids(ds2) == V{0, 1, 2, 3, 4, 5});
  CHECK(calls2 == 1 + 6);
}

TEST_CASE("cache(path) writes the first pass atomically, reads it back, ignores a truncated file") {
  TempDir dir;
  const auto path = dir / "cache.tfrecord";
  int calls = 0;
  auto make = [&] {
    return range_ds(5).map([&calls](Features e) {
      ++calls;
      e["img"] = full({2, 2, 3}, static_cast<double>(e.at("id").item<std::int64_t>()), DType::UInt8);
      return e;
    });
  };
  auto ds = make().cache(path);
  {  // an abandoned pass leaves no cache file
    auto it = ds.iterate(0);
    it.next();
    it.next();
    CHECK(!std::filesystem::exists(path));
  }
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 0);  // temporary removed
  calls = 0;
  const auto first = ds.collect();
  CHECK(calls == 5);
  REQUIRE(std::filesystem::exists(path));
  CHECK(count_tfrecords(path) == 6);  // 5 elements + the end record
  {  // two passes at once: the second passes through while the first fills
    TempDir other;
    auto both = make().cache(other / "c.tfrecord");
    auto i1 = both.iterate(0);
    auto i2 = both.iterate(1);
    int n1 = 0, n2 = 0;
    while (i1.next()) ++n1;
    while (i2.next()) ++n2;
    CHECK(n1 == 5);
    CHECK(n2 == 5);
    CHECK(count_tfrecords(other / "c.tfrecord") == 6);
    calls = 5;  // the count the checks below continue from
  }
  const auto second = make().cache(path).collect();  // another dataset over the same file
  CHECK(calls == 5);
  REQUIRE(second.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) CHECK(features_equal(first[i], second[i]));
  CHECK(second[3].at("img").dtype() == DType::UInt8);

  // Truncate the file: it is ignored and rebuilt.
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 10);
  calls = 0;
  const auto rebuilt = make().cache(path).collect();
  CHECK(calls == 5);
  REQUIRE(rebuilt.size() == 5);
  CHECK(features_equal(rebuilt[4], first[4]));
  CHECK(std::filesystem::file_size(path) == size);
  // Cut at a record boundary (the end record lost): still not complete.
  std::filesystem::resize_file(path, size - 16 - encode_example([] {
                                                      Example e;
                                                      e.set_int64s("__petal_cache_end__", {5});
                                                      return e;
                                                    }())
                                                      .size());
  CHECK(count_tfrecords(path) == 5);
  calls = 0;
  CHECK(make().cache(path).collect().size() == 5);
  CHECK(calls == 5);
  CHECK(count_tfrecords(path) == 6);
}

TEST_CASE("TFRecord round trip: write_tfrecord then from_tfrecords gives the elements back") {
  TempDir dir;
  std::vector<Features> elements;
  for (std::int64_t i = 0; i < 4; ++i) {
    Features e;
    e["label"] = from_vector(std::vector<std::int64_t>{i}, {});
    e["vec"] = from_vector(std::vector<float>{0.5f * i, 1.0f, -2.0f, 3.25f, 4, 5}, {2, 3});
    e["img"] = full({3, 2, 3}, static_cast<double>(10 * i), DType::UInt8);
    e["ragged"] = arange(i + 1);  // int64 [i + 1]
    e["f64"] = full({2}, 1.0 / 3 + i, DType::Float64);
    elements.push_back(e);
  }
  const auto path = dir / "round.tfrecord";
  CHECK(write_tfrecord(elements, path) == 4);
  const auto back = FeatureDataset::from_tfrecords({path}).collect();
  REQUIRE(back.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    INFO("element " << i << ": " << describe_features(back[i]));
    CHECK(features_equal(back[i], elements[i]));
  }
  // Also through a dataset, and the written Examples are plain ones a spec can read.
  CHECK(write_tfrecord(FeatureDataset::from_elements(elements).take(2), dir / "two.tfrecord") == 2);
  ExampleSpec spec = {{"label", FeatureSpec::int64()},
                      {"vec", FeatureSpec::floats({2, 3})},
                      {"img", FeatureSpec::bytes({3, 2, 3})},
                      {"ragged", FeatureSpec::int64_list()}};
  const auto parsed = FeatureDataset::from_tfrecords({dir / "two.tfrecord"}, spec).collect();
  REQUIRE(parsed.size() == 2);
  Features expected = elements[1];
  expected.erase("f64");
  CHECK(features_equal(parsed[1], expected));
  CHECK_THROWS_AS(write_tfrecord(std::vector<Features>{{{"a:b", zeros({1})}}}, dir / "bad.tfrecord"), ValueError);
  CHECK(!std::filesystem::exists(dir / "bad.tfrecord"));
}

TEST_CASE("from_tfrecords with a spec: images decoded and resized, fixed and variable lists, errors") {
  TempDir dir;
  std::vector<std::filesystem::path> files;
  for (int f = 0; f < 3; ++f) {
    files.push_back(dir / ("shard" + std::to_string(f) + ".tfrec"));
    TFRecordWriter w(files.back());
    for (int r = 0; r < 2; ++r) {
      const std::int64_t id = 10 * f + r;
      Image img(4, 6, 3);
      std::fill(img.pixels.begin(), img.pixels.end(), static_cast<std::uint8_t>(id));
      Example ex;
      ex.set_bytes("image", {encode_png(img)});
      ex.set_int64s("class", {id});
      ex.set_floats("box", {1, 2, 3, 4});
      ex.set_int64s("tags", std::vector<std::int64_t>(static_cast<std::size_t>(r + 1), id));
      w.write(encode_example(ex));
    }
    w.close();
  }
  ExampleSpec spec = {{"image", FeatureSpec::image(2, 3)},
                      {"class", FeatureSpec::int64()},
                      {"box", FeatureSpec::floats({2, 2})},
                      {"tags", FeatureSpec::int64_list()}};
  auto ds = FeatureDataset::from_tfrecords(files, spec);
  CHECK(ids(ds, 0, "class") == V{0, 1, 10, 11, 20, 21});
  CHECK(ids(FeatureDataset::from_tfrecords(files, spec, 2, 1), 0, "class") == V{0, 10, 1, 11, 20, 21});
  const auto e = ds.collect()[3];
  CHECK(e.at("image").shape() == Shape{2, 3, 3});
  CHECK(e.at("image").dtype() == DType::UInt8);
  CHECK(e.at("image").to_vector<std::uint8_t>() == std::vector<std::uint8_t>(18, 11));
  CHECK(e.at("box").shape() == Shape{2, 2});
  CHECK(e.at("tags").to_vector<std::int64_t>() == V{11, 11});
  // Batching the variable-length key fails and says so; without it, it works.
  const std::string ragged = test::thrown_message<ShapeError>([&] { ds.batch(2).collect(); });
  CHECK(ragged.find("\"tags\"") != std::string::npos);
  spec.erase("tags");
  const auto batches = FeatureDataset::from_tfrecords(files, spec).batch(4).collect();
  REQUIRE(batches.size() == 2);
  CHECK(batches[0].at("image").shape() == Shape{4, 2, 3, 3});
  // A wrong fixed length names the key, the file and the record.
  const std::string bad = test::thrown_message<FormatError>(
      [&] { FeatureDataset::from_tfrecords(files, {{"box", FeatureSpec::floats({3})}}).collect(); });
  CHECK(bad.find("\"box\"") != std::string::npos);
  CHECK(bad.find("shard0.tfrec") != std::string::npos);
  CHECK(bad.find("record 0") != std::string::npos);
  // Missing features: an error, unless optional.
  CHECK_THROWS_AS(FeatureDataset::from_tfrecords(files, {{"nope", FeatureSpec::int64()}}).collect(), FormatError);
  FeatureSpec opt = FeatureSpec::int64();
  opt.optional = true;
  CHECK(FeatureDataset::from_tfrecords(files, {{"nope", opt}}).collect()[0].empty());
  // A file of plain Examples needs a spec.
  CHECK_THROWS_AS(FeatureDataset::from_tfrecords(files).collect(), FormatError);
}
