// The protobuf wire decoder (data/example.cpp's WireReader), differentially:
// the input drives an independent encoder that builds an Example *and* one of
// the many wire encodings protobuf allows for it, which petal's encoder never
// writes: unpacked and packed repeated fields mixed, lists split over several
// messages (merged), a oneof set twice (the last wins), map keys repeated (the
// last entry wins), key after value, unknown fields of every wire type, and
// over-long (non-minimal) varints. Invariant: decode_example returns exactly
// the Example the generator meant (floats bit for bit). Truncating the
// encoding anywhere must give a petal::Error or an Example, never a crash.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "data/example.hpp"
#include "fuzz_common.hpp"
#include "fuzz_example_common.hpp"

using namespace petal;
using namespace petal::data;

namespace {

enum Wire { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

class Encoder {
 public:
  explicit Encoder(FuzzedDataProvider& in) : in_(in) {}

  // A varint, sometimes padded with 0x80 continuation bytes up to 10 bytes
  // (decoders must accept non-minimal varints).
  void varint(std::string& out, std::uint64_t v) {
    std::string bytes;
    while (v >= 0x80) {
      bytes.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes.push_back(static_cast<char>(v));
    const int pad = in_.ConsumeBool() ? 0 : in_.ConsumeIntegralInRange<int>(0, 10 - static_cast<int>(bytes.size()));
    if (pad > 0) {
      bytes.back() = static_cast<char>(bytes.back() | 0x80);
      for (int i = 0; i < pad - 1; ++i) bytes.push_back(static_cast<char>(0x80));
      bytes.push_back(0);
    }
    out += bytes;
  }
  void tag(std::string& out, std::uint32_t field, int wire) {
    varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire));
  }
  void len_field(std::string& out, std::uint32_t field, const std::string& value) {
    tag(out, field, kLen);
    varint(out, value.size());
    out += value;
  }
  void fixed32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }

  // Zero or more unknown fields (field numbers other than `known`).
  void unknown_fields(std::string& out, std::uint32_t known_max) {
    // (An exhausted provider returns 0, which ends the loop.)
    while (in_.ConsumeIntegralInRange<int>(0, 7) == 7) {
      const std::uint32_t field = known_max + 1 + in_.ConsumeIntegralInRange<std::uint32_t>(0, 1000);
      switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
        case 0: tag(out, field, kVarint); varint(out, in_.ConsumeIntegral<std::uint64_t>()); break;
        case 1: tag(out, field, kFixed64); for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(in_.ConsumeIntegral<std::uint8_t>())); break;
        case 2: len_field(out, field, in_.ConsumeRandomLengthString(16)); break;
        default: tag(out, field, kFixed32); fixed32(out, in_.ConsumeIntegral<std::uint32_t>()); break;
      }
    }
  }

  // The values of one list message (BytesList/FloatList/Int64List).
  std::string list(const Feature& f, std::size_t begin, std::size_t end) {
    std::string out;
    unknown_fields(out, 1);
    switch (f.type) {
      case FeatureType::Bytes:
        for (std::size_t i = begin; i < end; ++i) {
          len_field(out, 1, f.bytes[i]);
          unknown_fields(out, 1);
        }
        break;
      case FeatureType::Float:
        for (std::size_t i = begin; i < end;) {
          std::uint32_t bits;
          if (in_.ConsumeBool()) {  // unpacked
            std::memcpy(&bits, &f.floats[i], 4);
            tag(out, 1, kFixed32);
            fixed32(out, bits);
            ++i;
          } else {  // a packed run, sometimes after an empty one
            if (in_.ConsumeIntegralInRange<int>(0, 7) == 7) len_field(out, 1, "");
            const std::size_t n = in_.ConsumeIntegralInRange<std::size_t>(1, end - i);
            std::string packed;
            for (std::size_t k = 0; k < n; ++k, ++i) {
              std::memcpy(&bits, &f.floats[i], 4);
              fixed32(packed, bits);
            }
            len_field(out, 1, packed);
          }
          unknown_fields(out, 1);
        }
        break;
      case FeatureType::Int64:
        for (std::size_t i = begin; i < end;) {
          if (in_.ConsumeBool()) {
            tag(out, 1, kVarint);
            varint(out, static_cast<std::uint64_t>(f.int64s[i]));
            ++i;
          } else {
            if (in_.ConsumeIntegralInRange<int>(0, 7) == 7) len_field(out, 1, "");
            const std::size_t n = in_.ConsumeIntegralInRange<std::size_t>(1, end - i);
            std::string packed;
            for (std::size_t k = 0; k < n; ++k, ++i) varint(packed, static_cast<std::uint64_t>(f.int64s[i]));
            len_field(out, 1, packed);
          }
          unknown_fields(out, 1);
        }
        break;
      case FeatureType::None: break;
    }
    return out;
  }

  // A Feature message: maybe a decoy of another type first (the oneof keeps
  // the last member set), then the list split over one or more messages.
  std::string feature(const Feature& f) {
    std::string out;
    unknown_fields(out, 3);
    if (f.type == FeatureType::None) return out;
    const std::uint32_t field = f.type == FeatureType::Bytes ? 1 : f.type == FeatureType::Float ? 2 : 3;
    if (in_.ConsumeIntegralInRange<int>(0, 3) == 0) {
      const std::uint32_t decoy = 1 + (field + in_.ConsumeIntegralInRange<std::uint32_t>(0, 1)) % 3;
      Feature d;
      d.type = decoy == 1 ? FeatureType::Bytes : decoy == 2 ? FeatureType::Float : FeatureType::Int64;
      d.bytes = {"decoy"};
      d.floats = {1.5f};
      d.int64s = {-7};
      len_field(out, decoy, list(d, 0, 1));
    }
    const std::size_t n = f.size();
    std::size_t i = 0;
    do {
      const std::size_t end = i >= n || in_.ConsumeBool() ? n : in_.ConsumeIntegralInRange<std::size_t>(i + 1, n);
      len_field(out, field, list(f, i, end));
      unknown_fields(out, 3);
      i = end;
    } while (i < n);
    return out;
  }

  std::string map_entry(const std::string& key, const Feature& f) {
    std::string out;
    const std::string value = feature(f);
    const bool value_first = in_.ConsumeBool();
    // The value field may be left out when the feature is empty (no kind).
    const bool omit_value = value.empty() && in_.ConsumeBool();
    if (value_first && !omit_value) len_field(out, 2, value);
    unknown_fields(out, 2);
    len_field(out, 1, key);
    unknown_fields(out, 2);
    if (!value_first && !omit_value) len_field(out, 2, value);
    return out;
  }

 private:
  FuzzedDataProvider& in_;
};

Feature random_feature(FuzzedDataProvider& in) {
  Feature f;
  const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 6);
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: break;
    case 1:
      f.type = FeatureType::Bytes;
      for (std::size_t i = 0; i < n; ++i) f.bytes.push_back(in.ConsumeRandomLengthString(24));
      break;
    case 2:
      f.type = FeatureType::Float;
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t bits = in.ConsumeIntegral<std::uint32_t>();
        float v;
        std::memcpy(&v, &bits, 4);
        f.floats.push_back(v);
      }
      break;
    default:
      f.type = FeatureType::Int64;
      for (std::size_t i = 0; i < n; ++i) f.int64s.push_back(in.ConsumeIntegral<std::int64_t>());
      break;
  }
  return f;
}


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Encoder enc(in);
  Example expected;
  std::string features;   // the current Features message
  std::string example;    // the Example message
  enc.unknown_fields(example, 1);
  const int entries = in.ConsumeIntegralInRange<int>(0, 8);
  for (int e = 0; e < entries; ++e) {
    // Few distinct keys, so repeated keys happen: the last entry wins.
    std::string key = in.ConsumeBool() ? std::string(1, static_cast<char>('a' + in.ConsumeIntegralInRange<int>(0, 3)))
                                       : in.ConsumeRandomLengthString(12);
    const Feature f = random_feature(in);
    enc.len_field(features, 1, enc.map_entry(key, f));
    enc.unknown_fields(features, 1);
    expected.features[key] = f;
    // Features may be split over several Example.features fields (merged).
    if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
      enc.len_field(example, 1, features);
      enc.unknown_fields(example, 1);
      features.clear();
    }
  }
  if (!features.empty() || entries == 0 || in.ConsumeBool()) enc.len_field(example, 1, features);

  Example decoded;
  fuzz::expect_ok("decode_example of a valid encoding", [&] { decoded = decode_example(example); });
  FUZZ_CHECK(fuzz::same_example(decoded, expected), "decoded keys ", decoded.key_list(), ", expected ",
             expected.key_list(), " (", example.size(), "-byte encoding)");

  // Any prefix: an error or an Example, nothing else.
  const std::size_t cut = in.ConsumeIntegralInRange<std::size_t>(0, example.size());
  fuzz::expect_ok_or_error("decode_example of a truncated encoding",
                           [&] { decode_example(std::string_view(example).substr(0, cut)); });
  return 0;
}
