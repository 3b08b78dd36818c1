// tf.train.Example, decoded and encoded by hand (no protobuf library):
//   Example { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }
//   Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
//   Int64List { repeated int64 value = 1 [packed]; }
// The decoder accepts packed and unpacked repeated fields, map entries in any
// order and skips unknown fields, as protobuf does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace petal::data {

// Caps on one decoded Example (docs/limits.md), checked against counts taken
// from the wire before any list grows, so memory stays proportional to the
// record: a float costs what it takes on the wire, an int64 at most 8 times
// (1-byte varints), a bytes value its bytes plus a 32-byte std::string.
// bytes_list values in one Example, all features together: 2^20 (at most 32 MiB
// of std::string beyond the bytes; a 2-byte empty entry would otherwise cost
// 16 times its size).
inline constexpr std::size_t kMaxExampleBytesValues = std::size_t{1} << 20;
// float_list and int64_list values in one Example, all features together:
// 2^26 (at most 512 MiB as int64).
inline constexpr std::size_t kMaxExampleNumericValues = std::size_t{1} << 26;
// Features (map entries) in one Example: 2^16.
inline constexpr std::size_t kMaxExampleFeatures = std::size_t{1} << 16;

enum class FeatureType : std::uint8_t { None, Bytes, Float, Int64 };

// "bytes_list", "float_list", "int64_list" (the protobuf field names), or "none".
const char* feature_type_name(FeatureType type);

struct Feature {
  FeatureType type = FeatureType::None;
  std::vector<std::string> bytes;  // when type == Bytes
  std::vector<float> floats;       // when type == Float
  std::vector<std::int64_t> int64s;  // when type == Int64

  static Feature of_bytes(std::vector<std::string> values);
  static Feature of_floats(std::vector<float> values);
  static Feature of_int64s(std::vector<std::int64_t> values);
  // Number of values of the active list.
  std::size_t size() const;
  bool operator==(const Feature&) const = default;
};

class Example {
 public:
  // Keys stay sorted, so encode() writes map entries in key order.
  std::map<std::string, Feature> features;

  bool has(const std::string& key) const { return features.count(key) != 0; }
  // Throws FormatError naming the key and listing the available keys.
  const Feature& at(const std::string& key) const;

  // Typed access. A missing key throws FormatError (listing the keys); a
  // feature of another type throws DTypeError naming both types.
  const std::vector<std::string>& bytes_list(const std::string& key) const;
  const std::vector<float>& float_list(const std::string& key) const;
  const std::vector<std::int64_t>& int64_list(const std::string& key) const;
  // The single value of a one-element list (FormatError when the list has
  // another length).
  const std::string& bytes(const std::string& key) const;
  float float_value(const std::string& key) const;
  std::int64_t int64(const std::string& key) const;

  Example& set_bytes(const std::string& key, std::vector<std::string> values);
  Example& set_floats(const std::string& key, std::vector<float> values);
  Example& set_int64s(const std::string& key, std::vector<std::int64_t> values);

  // Comma-separated sorted keys, for messages.
  std::string key_list() const;
  bool operator==(const Example&) const = default;
};

// Parses a serialized Example. Throws FormatError "Example: <what> at byte N"
// (N an offset into the payload) on malformed input or when a cap above is
// exceeded.
Example decode_example(std::string_view payload);
// Serializes with packed numeric lists and keys in sorted order (the layout
// of the flowers shards, so re-encoding one of their records gives the same bytes).
std::string encode_example(const Example& example);

}  // namespace petal::data
