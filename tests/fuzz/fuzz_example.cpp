// tf.train.Example: the input is one serialized Example (a TFRecord payload).
// Invariants:
//  - decode_example either throws a petal::Error or returns an Example;
//  - encode -> decode gives the same Example (floats compared bit for bit),
//    and encoding that again gives the same bytes (the encoding is canonical);
//  - the typed accessors agree with the feature's type: the matching one
//    returns the list, the others throw DTypeError, a missing key FormatError.
#include <string>

#include "data/example.hpp"
#include "fuzz_common.hpp"
#include "fuzz_example_common.hpp"

using namespace petal;
using namespace petal::data;

namespace {

template <class Fn>
void expect_dtype_error(const char* what, Fn&& fn, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  fuzz::expect_throws<DTypeError>("DTypeError", what, fn, file, line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  Example example;
  if (!fuzz::expect_ok_or_error("decode_example", [&] { example = decode_example(payload); })) return 0;

  std::string encoded;
  Example again;
  fuzz::expect_ok("encode/decode round trip", [&] {
    encoded = encode_example(example);
    again = decode_example(encoded);
  });
  FUZZ_CHECK(fuzz::same_example(example, again), "encode -> decode changed the Example (keys: ", example.key_list(),
             ")");
  std::string encoded_again;
  fuzz::expect_ok("encode_example", [&] { encoded_again = encode_example(again); });
  FUZZ_CHECK(encoded_again == encoded, "encoding is not canonical");

  for (const auto& entry : example.features) {
    const std::string& key = entry.first;  // (clang 14 cannot capture structured bindings)
    const Feature& feature = entry.second;
    FUZZ_CHECK(example.has(key) && &example.at(key) == &feature);
    const std::size_t n = feature.size();
    switch (feature.type) {
      case FeatureType::Bytes:
        FUZZ_CHECK(n == feature.bytes.size() && feature.floats.empty() && feature.int64s.empty());
        FUZZ_CHECK(&example.bytes_list(key) == &feature.bytes);
        expect_dtype_error("float_list of a bytes_list", [&] { example.float_list(key); });
        expect_dtype_error("int64_list of a bytes_list", [&] { example.int64_list(key); });
        if (n == 1) FUZZ_CHECK(example.bytes(key) == feature.bytes[0]);
        break;
      case FeatureType::Float:
        FUZZ_CHECK(n == feature.floats.size() && feature.bytes.empty() && feature.int64s.empty());
        FUZZ_CHECK(&example.float_list(key) == &feature.floats);
        expect_dtype_error("int64 of a float_list", [&] { example.int64(key); });
        expect_dtype_error("bytes of a float_list", [&] { example.bytes(key); });
        break;
      case FeatureType::Int64:
        FUZZ_CHECK(n == feature.int64s.size() && feature.bytes.empty() && feature.floats.empty());
        FUZZ_CHECK(&example.int64_list(key) == &feature.int64s);
        expect_dtype_error("float_value of an int64_list", [&] { example.float_value(key); });
        if (n == 1) FUZZ_CHECK(example.int64(key) == feature.int64s[0]);
        break;
      case FeatureType::None:
        FUZZ_CHECK(n == 0 && feature.bytes.empty() && feature.floats.empty() && feature.int64s.empty());
        break;
    }
    // Single-value accessors throw unless the list has exactly one value.
    if (n != 1 && feature.type == FeatureType::Int64)
      FUZZ_CHECK(!fuzz::expect_ok_or_error("int64", [&] { example.int64(key); }));
  }
  FUZZ_CHECK(!fuzz::expect_ok_or_error("at(missing)", [&] { example.at(std::string("\xff missing \xff")); }) ||
             example.has("\xff missing \xff"));
  return 0;
}
