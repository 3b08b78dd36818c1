#include "data/example.hpp"

#include <utility>

#include "data/protobuf_wire.hpp"

namespace petal::data {
namespace {

using protobuf::float_from_bits;
using protobuf::kFixed32;
using protobuf::kLengthDelimited;
using protobuf::kVarint;
using protobuf::put_bytes_field;
using protobuf::put_varint;

// Every message of a record is read with the format name "Example".
class WireReader : public protobuf::WireReader {
 public:
  WireReader(std::string_view bytes, std::size_t base, std::string context)
      : protobuf::WireReader(bytes, base, "Example", std::move(context)) {}
};

// What one Example may still decode, charged before the memory is reserved.
struct Budget {
  std::size_t bytes_values = kMaxExampleBytesValues;
  std::size_t numeric_values = kMaxExampleNumericValues;
  std::size_t features = kMaxExampleFeatures;
};

std::size_t count_varints(std::string_view packed) {
  std::size_t n = 0;
  for (char c : packed) n += (static_cast<unsigned char>(c) & 0x80) == 0;
  return n;
}

// Calls fn(wire) at each occurrence of field 1 (fn reads its value) and
// skips every other field: the messages of an Example keep their payload in
// field 1 (Example.features, Features.feature, the values of the lists).
template <class Fn>
void for_each_field_1_tag(WireReader& in, Fn&& fn) {
  std::uint32_t field = 0;
  int wire = 0;
  while (in.tag(field, wire)) {
    if (field != 1) {
      in.skip(wire);
      continue;
    }
    fn(wire);
  }
}

// The number of values a BytesList/FloatList/Int64List message holds (for
// the feature's type), found by walking its tags without storing anything.
std::size_t count_list_values(WireReader in, FeatureType type) {
  std::size_t n = 0;
  for_each_field_1_tag(in, [&](int wire) {
    if (type == FeatureType::None) {
      in.skip(wire);
    } else if (wire == kLengthDelimited) {
      std::size_t at = 0;
      const std::string_view value = in.length_delimited(at);
      n += type == FeatureType::Bytes ? 1 : type == FeatureType::Float ? value.size() / 4 : count_varints(value);
    } else {
      in.skip(wire);
      ++n;
    }
  });
  return n;
}

void charge(WireReader& in, std::size_t& left, std::size_t n, std::size_t limit, const char* what) {
  if (n > left)
    in.fail_at(str_cat("more than ", limit, " ", what, " in one Example (docs/limits.md)"), in.offset());
  left -= n;
}

// Merges one BytesList/FloatList/Int64List message into feature (repeated
// fields append, as protobuf merging does).
void decode_list(WireReader& in, Feature& feature, Budget& budget) {
  const std::size_t n = count_list_values(in, feature.type);
  switch (feature.type) {
    case FeatureType::Bytes:
      charge(in, budget.bytes_values, n, kMaxExampleBytesValues, "bytes_list values");
      feature.bytes.reserve(feature.bytes.size() + n);
      break;
    case FeatureType::Float:
      charge(in, budget.numeric_values, n, kMaxExampleNumericValues, "float_list and int64_list values");
      feature.floats.reserve(feature.floats.size() + n);
      break;
    case FeatureType::Int64:
      charge(in, budget.numeric_values, n, kMaxExampleNumericValues, "float_list and int64_list values");
      feature.int64s.reserve(feature.int64s.size() + n);
      break;
    case FeatureType::None: break;
  }
  constexpr std::uint32_t kValuesField = 1;  // every list keeps its values in field 1
  for_each_field_1_tag(in, [&](int wire) {
    std::size_t at = 0;
    switch (feature.type) {
      case FeatureType::Bytes:
        in.expect_wire(wire, kLengthDelimited, kValuesField);
        feature.bytes.emplace_back(in.length_delimited(at));
        break;
      case FeatureType::Float:
        if (wire == kFixed32) {
          feature.floats.push_back(float_from_bits(in.fixed32()));
        } else if (wire == kLengthDelimited) {
          const std::string_view packed = in.length_delimited(at);
          if (packed.size() % 4 != 0)
            in.fail_at(str_cat("packed float list of ", packed.size(), " bytes (not a multiple of 4)"), at);
          WireReader values(packed, at, in.context());
          while (!values.done()) feature.floats.push_back(float_from_bits(values.fixed32()));
        } else {
          in.expect_wire(wire, kFixed32, kValuesField);
        }
        break;
      case FeatureType::Int64:
        if (wire == kVarint) {
          feature.int64s.push_back(static_cast<std::int64_t>(in.varint()));
        } else if (wire == kLengthDelimited) {
          WireReader values(in.length_delimited(at), at, in.context());
          while (!values.done()) feature.int64s.push_back(static_cast<std::int64_t>(values.varint()));
        } else {
          in.expect_wire(wire, kVarint, kValuesField);
        }
        break;
      case FeatureType::None: break;
    }
  });
}

Feature decode_feature(std::string_view bytes, std::size_t base, const std::string& key, Budget& budget) {
  WireReader in(bytes, base, str_cat("feature '", key, "'"));
  Feature feature;
  std::uint32_t field = 0;
  int wire = 0;
  while (in.tag(field, wire)) {
    if (field < 1 || field > 3) {
      in.skip(wire);
      continue;
    }
    in.expect_wire(wire, kLengthDelimited, field);
    const auto type = field == 1 ? FeatureType::Bytes : field == 2 ? FeatureType::Float : FeatureType::Int64;
    // A oneof keeps the last member that was set; the same member merges.
    if (feature.type != type) feature = Feature{type, {}, {}, {}};
    std::size_t at = 0;
    const std::string_view list = in.length_delimited(at);
    WireReader list_in(list, at, str_cat("feature '", key, "' ", feature_type_name(type)));
    decode_list(list_in, feature, budget);
  }
  return feature;
}

void decode_map_entry(std::string_view bytes, std::size_t base, Example& example, Budget& budget) {
  WireReader in(bytes, base, "features map entry");
  charge(in, budget.features, 1, kMaxExampleFeatures, "features");
  std::string key;
  std::string_view value;
  std::size_t value_at = 0;
  bool has_value = false;
  std::uint32_t field = 0;
  int wire = 0;
  // Key and value may come in either order, so the value is decoded last.
  while (in.tag(field, wire)) {
    std::size_t at = 0;
    if (field == 1) {
      in.expect_wire(wire, kLengthDelimited, field);
      key = std::string(in.length_delimited(at));
    } else if (field == 2) {
      in.expect_wire(wire, kLengthDelimited, field);
      value = in.length_delimited(value_at);
      has_value = true;
    } else {
      in.skip(wire);
    }
  }
  example.features[key] = has_value ? decode_feature(value, value_at, key, budget) : Feature{};
}

// Calls fn(bytes, base) for each occurrence of field 1, which must be
// length-delimited (Example.features, Features.feature), and skips every
// other field; base is the offset of bytes in the record, for messages.
template <class Fn>
void for_each_field_1(WireReader& in, Fn&& fn) {
  for_each_field_1_tag(in, [&](int wire) {
    in.expect_wire(wire, kLengthDelimited, 1);
    std::size_t at = 0;
    const std::string_view bytes = in.length_delimited(at);
    fn(bytes, at);
  });
}

void decode_features(std::string_view bytes, std::size_t base, Example& example, Budget& budget) {
  WireReader in(bytes, base, "Features");
  for_each_field_1(in, [&](std::string_view entry, std::size_t at) { decode_map_entry(entry, at, example, budget); });
}

// ---- encoding ----

std::string encode_feature(const Feature& feature) {
  std::string list;
  switch (feature.type) {
    case FeatureType::None: return {};
    case FeatureType::Bytes:
      for (const auto& b : feature.bytes) put_bytes_field(list, 1, b);
      break;
    case FeatureType::Float:
      if (!feature.floats.empty()) {
        std::string packed;
        packed.reserve(feature.floats.size() * 4);
        for (float v : feature.floats) protobuf::put_float_bits(packed, v);
        put_bytes_field(list, 1, packed);
      }
      break;
    case FeatureType::Int64:
      if (!feature.int64s.empty()) {
        std::string packed;
        for (auto v : feature.int64s) put_varint(packed, static_cast<std::uint64_t>(v));
        put_bytes_field(list, 1, packed);
      }
      break;
  }
  std::string out;
  const std::uint32_t field = feature.type == FeatureType::Bytes ? 1 : feature.type == FeatureType::Float ? 2 : 3;
  put_bytes_field(out, field, list);
  return out;
}

}  // namespace

const char* feature_type_name(FeatureType type) {
  switch (type) {
    case FeatureType::None: return "none";
    case FeatureType::Bytes: return "bytes_list";
    case FeatureType::Float: return "float_list";
    case FeatureType::Int64: return "int64_list";
  }
  return "?";
}

Feature Feature::of_bytes(std::vector<std::string> values) {
  Feature f;
  f.type = FeatureType::Bytes;
  f.bytes = std::move(values);
  return f;
}
Feature Feature::of_floats(std::vector<float> values) {
  Feature f;
  f.type = FeatureType::Float;
  f.floats = std::move(values);
  return f;
}
Feature Feature::of_int64s(std::vector<std::int64_t> values) {
  Feature f;
  f.type = FeatureType::Int64;
  f.int64s = std::move(values);
  return f;
}

std::size_t Feature::size() const {
  switch (type) {
    case FeatureType::Bytes: return bytes.size();
    case FeatureType::Float: return floats.size();
    case FeatureType::Int64: return int64s.size();
    case FeatureType::None: return 0;
  }
  return 0;
}

std::string Example::key_list() const {
  std::string keys;
  for (const auto& [key, feature] : features) keys += (keys.empty() ? "" : ", ") + key;
  return keys.empty() ? "(none)" : keys;
}

const Feature& Example::at(const std::string& key) const {
  auto it = features.find(key);
  if (it == features.end())
    throw FormatError(str_cat("Example has no feature '", key, "'; available: ", key_list()));
  return it->second;
}

namespace {
const Feature& typed(const Example& ex, const std::string& key, FeatureType type) {
  const Feature& f = ex.at(key);
  if (f.type != type)
    throw DTypeError(str_cat("Example feature '", key, "' is a ", feature_type_name(f.type), ", not a ",
                             feature_type_name(type)));
  return f;
}
void check_single(const Feature& f, const std::string& key) {
  if (f.size() != 1)
    throw FormatError(str_cat("Example feature '", key, "' has ", f.size(), " values, expected exactly 1"));
}
}  // namespace

const std::vector<std::string>& Example::bytes_list(const std::string& key) const {
  return typed(*this, key, FeatureType::Bytes).bytes;
}
const std::vector<float>& Example::float_list(const std::string& key) const {
  return typed(*this, key, FeatureType::Float).floats;
}
const std::vector<std::int64_t>& Example::int64_list(const std::string& key) const {
  return typed(*this, key, FeatureType::Int64).int64s;
}
const std::string& Example::bytes(const std::string& key) const {
  const Feature& f = typed(*this, key, FeatureType::Bytes);
  check_single(f, key);
  return f.bytes[0];
}
float Example::float_value(const std::string& key) const {
  const Feature& f = typed(*this, key, FeatureType::Float);
  check_single(f, key);
  return f.floats[0];
}
std::int64_t Example::int64(const std::string& key) const {
  const Feature& f = typed(*this, key, FeatureType::Int64);
  check_single(f, key);
  return f.int64s[0];
}

Example& Example::set_bytes(const std::string& key, std::vector<std::string> values) {
  features[key] = Feature::of_bytes(std::move(values));
  return *this;
}
Example& Example::set_floats(const std::string& key, std::vector<float> values) {
  features[key] = Feature::of_floats(std::move(values));
  return *this;
}
Example& Example::set_int64s(const std::string& key, std::vector<std::int64_t> values) {
  features[key] = Feature::of_int64s(std::move(values));
  return *this;
}

Example decode_example(std::string_view payload) {
  Example example;
  WireReader in(payload, 0, "Example");
  Budget budget;
  for_each_field_1(in,
                   [&](std::string_view features, std::size_t at) { decode_features(features, at, example, budget); });
  return example;
}

std::string encode_example(const Example& example) {
  std::string features;
  for (const auto& [key, feature] : example.features) {
    std::string entry;
    put_bytes_field(entry, 1, key);
    put_bytes_field(entry, 2, encode_feature(feature));
    put_bytes_field(features, 1, entry);
  }
  std::string out;
  put_bytes_field(out, 1, features);
  return out;
}

}  // namespace petal::data
