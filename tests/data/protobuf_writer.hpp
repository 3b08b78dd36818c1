// A minimal protobuf writer for hand-made wire data in the Example tests:
// unpacked fields, odd orders and hostile lists that petal's own encoder
// never writes. Written independently of data/protobuf_wire, so the tests do
// not check the codec against itself.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace petal::data::testing {

inline void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A length-delimited field (wire type 2).
inline std::string field(std::uint32_t number, const std::string& bytes) {
  std::string out;
  varint(out, (number << 3) | 2);
  varint(out, bytes.size());
  return out + bytes;
}

// A varint field (wire type 0).
inline std::string varint_field(std::uint32_t number, std::uint64_t v) {
  std::string out;
  varint(out, number << 3);
  varint(out, v);
  return out;
}

// A fixed32 field (wire type 5) holding a float's bits, little-endian.
inline std::string fixed32_field(std::uint32_t number, float f) {
  std::string out;
  varint(out, (number << 3) | 5);
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(bits >> (8 * i)));
  return out;
}

}  // namespace petal::data::testing
