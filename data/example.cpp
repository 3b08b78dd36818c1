#include "data/example.hpp"

#include <cstring>
#include <utility>

namespace petal::data {
namespace {

enum WireType : int { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Reads protobuf wire data from a view of the payload. `base` is the view's
// offset in the whole payload and `context` the message being read, so every
// error says where in the record it happened.
class WireReader {
 public:
  WireReader(std::string_view bytes, std::size_t base, std::string context)
      : data_(reinterpret_cast<const unsigned char*>(bytes.data())),
        size_(bytes.size()),
        base_(base),
        context_(std::move(context)) {}

  bool done() const { return pos_ == size_; }
  std::size_t offset() const { return base_ + pos_; }
  const std::string& context() const { return context_; }

  [[noreturn]] void fail(const std::string& what) const { fail_at(what, offset()); }
  [[noreturn]] void fail_at(const std::string& what, std::size_t at) const {
    throw FormatError(str_cat("Example: ", what, " in ", context_, " at byte ", at));
  }

  std::uint64_t varint() {
    const std::size_t start = offset();
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == size_) fail_at("truncated varint", start);
      const unsigned char byte = data_[pos_++];
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail_at("varint longer than 10 bytes", start);
  }

  // Returns false at the end of the message.
  bool tag(std::uint32_t& field, int& wire) {
    if (done()) return false;
    const std::size_t start = offset();
    const std::uint64_t key = varint();
    field = static_cast<std::uint32_t>(key >> 3);
    wire = static_cast<int>(key & 7);
    if (field == 0 || (key >> 3) > 0x1fffffff) fail_at(str_cat("invalid field number ", key >> 3), start);
    return true;
  }

  std::string_view length_delimited(std::size_t& value_offset) {
    const std::size_t start = offset();
    const std::uint64_t length = varint();
    if (length > size_ - pos_)
      fail_at(str_cat("length ", length, " runs past the end of the message (", size_ - pos_, " bytes left)"), start);
    value_offset = offset();
    std::string_view view(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(length));
    pos_ += static_cast<std::size_t>(length);
    return view;
  }

  std::uint32_t fixed32() {
    if (size_ - pos_ < 4) fail("truncated fixed32");
    std::uint32_t v = data_[pos_] | (data_[pos_ + 1] << 8) | (data_[pos_ + 2] << 16) |
                      (static_cast<std::uint32_t>(data_[pos_ + 3]) << 24);
    pos_ += 4;
    return v;
  }

  void skip(int wire) {
    std::size_t ignored = 0;
    switch (wire) {
      case kVarint: varint(); return;
      case kFixed64:
        if (size_ - pos_ < 8) fail("truncated fixed64");
        pos_ += 8;
        return;
      case kLengthDelimited: length_delimited(ignored); return;
      case kFixed32: fixed32(); return;
      default: fail(str_cat("unsupported wire type ", wire));
    }
  }

  void expect_wire(int wire, int expected, std::uint32_t field) const {
    if (wire != expected) fail(str_cat("field ", field, " has wire type ", wire, ", expected ", expected));
  }

 private:
  const unsigned char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::size_t base_;
  std::string context_;
};

float float_from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

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

// The number of values a BytesList/FloatList/Int64List message holds (for
// the feature's type), found by walking its tags without storing anything.
std::size_t count_list_values(WireReader in, FeatureType type) {
  std::size_t n = 0;
  std::uint32_t field = 0;
  int wire = 0;
  while (in.tag(field, wire)) {
    if (field != 1 || type == FeatureType::None) {
      in.skip(wire);
      continue;
    }
    if (wire == kLengthDelimited) {
      std::size_t at = 0;
      const std::string_view value = in.length_delimited(at);
      n += type == FeatureType::Bytes ? 1 : type == FeatureType::Float ? value.size() / 4 : count_varints(value);
    } else {
      in.skip(wire);
      ++n;
    }
  }
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
  std::uint32_t field = 0;
  int wire = 0;
  while (in.tag(field, wire)) {
    if (field != 1) {
      in.skip(wire);
      continue;
    }
    std::size_t at = 0;
    switch (feature.type) {
      case FeatureType::Bytes:
        in.expect_wire(wire, kLengthDelimited, field);
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
          in.expect_wire(wire, kFixed32, field);
        }
        break;
      case FeatureType::Int64:
        if (wire == kVarint) {
          feature.int64s.push_back(static_cast<std::int64_t>(in.varint()));
        } else if (wire == kLengthDelimited) {
          WireReader values(in.length_delimited(at), at, in.context());
          while (!values.done()) feature.int64s.push_back(static_cast<std::int64_t>(values.varint()));
        } else {
          in.expect_wire(wire, kVarint, field);
        }
        break;
      case FeatureType::None: break;
    }
  }
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
  std::uint32_t field = 0;
  int wire = 0;
  while (in.tag(field, wire)) {
    if (field != 1) {
      in.skip(wire);
      continue;
    }
    in.expect_wire(wire, kLengthDelimited, field);
    std::size_t at = 0;
    const std::string_view bytes = in.length_delimited(at);
    fn(bytes, at);
  }
}

void decode_features(std::string_view bytes, std::size_t base, Example& example, Budget& budget) {
  WireReader in(bytes, base, "Features");
  for_each_field_1(in, [&](std::string_view entry, std::size_t at) { decode_map_entry(entry, at, example, budget); });
}

// ---- encoding ----

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, std::uint32_t field, int wire) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire));
}

void put_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string encode_feature(const Feature& feature) {
  std::string list;
  switch (feature.type) {
    case FeatureType::None: return {};
    case FeatureType::Bytes:
      for (const auto& b : feature.bytes) put_bytes_field(list, 1, b);
      break;
    case FeatureType::Float:
      if (!feature.floats.empty()) {
        std::string packed(feature.floats.size() * 4, '\0');
        for (std::size_t i = 0; i < feature.floats.size(); ++i) {
          std::uint32_t bits;
          std::memcpy(&bits, &feature.floats[i], 4);
          for (int b = 0; b < 4; ++b) packed[i * 4 + b] = static_cast<char>(bits >> (8 * b));
        }
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
