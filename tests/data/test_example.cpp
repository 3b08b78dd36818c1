#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <string>

#include "core/random.hpp"
#include "data/example.hpp"
#include "data/tfrecord.hpp"
#include "protobuf_writer.hpp"
#include "temp_dir.hpp"
#include "tests/thrown_message.hpp"

using namespace petal::data;
using namespace petal::data::testing;

namespace {

Example all_types() {
  Example ex;
  ex.set_bytes("image", {std::string("\xff\xd8\x00jpeg", 7)});
  ex.set_bytes("names", {"a", "", "ccc"});
  ex.set_int64s("class", {4});
  ex.set_int64s("extremes", {0, -1, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()});
  ex.set_floats("one_hot_class", {0.f, 0.f, 1.f, -2.5f, 1e-30f});
  ex.set_floats("empty_floats", {});
  return ex;
}

}  // namespace

TEST_CASE("Example encode -> decode round trip with every feature type") {
  const Example ex = all_types();
  const std::string wire = encode_example(ex);
  const Example back = decode_example(wire);
  CHECK(back == ex);
  CHECK(back.int64("class") == 4);
  CHECK(back.bytes("image").size() == 7);
  CHECK(back.int64_list("extremes")[2] == std::numeric_limits<std::int64_t>::min());
  CHECK(back.float_list("one_hot_class")[3] == -2.5f);
  CHECK(back.at("empty_floats").type == FeatureType::Float);
  CHECK(encode_example(back) == wire);
  CHECK(decode_example("") == Example{});
}

TEST_CASE("Example decoder: unpacked fields, value before key, unknown fields") {
  // Feature with an unpacked int64_list (two varints) and an unpacked float list.
  const std::string ints = field(3, varint_field(1, 7) + varint_field(1, static_cast<std::uint64_t>(-3)));
  const std::string floats = field(2, fixed32_field(1, 1.5f) + fixed32_field(1, -0.25f));
  // Map entries with the value first, an unknown field inside, and an unknown
  // top-level field in Example.
  const std::string entry1 = field(2, ints) + varint_field(9, 1) + field(1, "ints");
  const std::string entry2 = field(1, "floats") + field(2, floats);
  const std::string features = field(1, entry1) + field(1, entry2);
  const std::string wire = varint_field(5, 99) + field(1, features) + field(7, "ignored");
  const Example ex = decode_example(wire);
  CHECK(ex.int64_list("ints") == std::vector<std::int64_t>{7, -3});
  CHECK(ex.float_list("floats") == std::vector<float>{1.5f, -0.25f});
  CHECK(ex.key_list() == "floats, ints");

  SUBCASE("packed and unpacked values of one list merge") {
    std::string packed;
    varint(packed, 10);
    varint(packed, 11);
    const std::string mixed = field(3, varint_field(1, 9) + field(1, packed));
    const Example m = decode_example(field(1, field(1, field(1, "k") + field(2, mixed))));
    CHECK(m.int64_list("k") == std::vector<std::int64_t>{9, 10, 11});
  }
}

TEST_CASE("Example accessors explain missing keys and wrong types") {
  const Example ex = all_types();
  const std::string missing = petal::test::thrown_message<petal::FormatError>([&] { (void)ex.int64("label"); });
  CHECK(missing.find("'label'") != std::string::npos);
  CHECK(missing.find("class, empty_floats, extremes, image, names, one_hot_class") != std::string::npos);
  const std::string wrong_type = petal::test::thrown_message<petal::DTypeError>([&] { (void)ex.bytes("class"); });
  CHECK(wrong_type.find("int64_list") != std::string::npos);
  CHECK(wrong_type.find("bytes_list") != std::string::npos);
  CHECK_THROWS_AS((void)ex.int64("extremes"), petal::FormatError);  // 4 values, not 1
  CHECK_THROWS_AS((void)ex.float_list("names"), petal::DTypeError);
}

TEST_CASE("malformed Examples give FormatError with a byte offset") {
  const std::string wire = encode_example(all_types());
  SUBCASE("every truncation fails cleanly or parses a prefix") {
    // Truncating inside a length-delimited field must be detected.
    for (std::size_t n = 1; n < wire.size(); ++n) {
      REQUIRE_THROWS_AS(decode_example(std::string_view(wire).substr(0, n)), petal::FormatError);
    }
  }
  SUBCASE("messages") {
    CHECK(petal::test::thrown_message<petal::FormatError>([&] { decode_example(wire.substr(0, 5)); }).find("at byte") !=
          std::string::npos);
    CHECK_THROWS_AS(decode_example(std::string(12, '\xff')), petal::FormatError);       // endless varint
    CHECK_THROWS_AS(decode_example(std::string("\x0b\x00", 2)), petal::FormatError);   // group wire type
    const std::string bad_floats = field(1, field(1, field(1, "f") + field(2, field(2, field(1, "abc")))));
    CHECK_THROWS_AS(decode_example(bad_floats), petal::FormatError);  // packed floats not a multiple of 4
  }
  SUBCASE("random bytes never crash") {
    petal::Generator gen(5);
    int errors = 0;
    for (int trial = 0; trial < 2000; ++trial) {
      std::string noise(1 + gen.uniform_int(64), '\0');
      for (auto& c : noise) c = static_cast<char>(gen.next_u64());
      try {
        decode_example(noise);
      } catch (const petal::FormatError&) {
        ++errors;
      }
    }
    CHECK(errors > 1000);
  }
}

TEST_CASE("the flowers records decode and re-encode byte for byte") {
  TFRecordReader reader(petal::data::testing::flowers_dir() / "flowers00-230.tfrec");
  std::string payload;
  REQUIRE(reader.read(payload));
  const Example ex = decode_example(payload);
  CHECK(ex.key_list() == "class, image, label, one_hot_class, size");
  CHECK(ex.int64("class") == 4);
  CHECK(ex.bytes("label") == "tulips");
  CHECK(ex.bytes("image").size() == 15192);
  CHECK(ex.int64_list("size") == std::vector<std::int64_t>{192, 192});
  CHECK(ex.float_list("one_hot_class") == std::vector<float>{0, 0, 0, 0, 1});
  CHECK(encode_example(ex) == payload);
}
