// tf.train.Example, decoded and encoded by hand (no protobuf library):
//   Example { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }
//   Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
//   Int64List { repeated int64 value = 1 [packed]; }
// The decoder accepts packed and unpacked repeated fields, map entries in any
// order and skips unknown fields, as protobuf does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace petal::data {

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
// (N an offset into the payload) on malformed input.
Example decode_example(std::string_view payload);
// Serializes with packed numeric lists and keys in sorted order (the layout
// of the flowers shards, so re-encoding one of their records gives the same bytes).
std::string encode_example(const Example& example);

}  // namespace petal::data
