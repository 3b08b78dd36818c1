#include "data/protobuf_wire.hpp"

#include <cstring>
#include <utility>

#include "core/error.hpp"

namespace petal::data::protobuf {

// ---- writing ----

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

void put_varint_field(std::string& out, std::uint32_t field, std::int64_t v) {
  put_tag(out, field, kVarint);
  put_varint(out, static_cast<std::uint64_t>(v));
}

void put_float_field(std::string& out, std::uint32_t field, float v) {
  put_tag(out, field, kFixed32);
  put_float_bits(out, v);
}

void put_double_field(std::string& out, std::uint32_t field, double v) {
  put_tag(out, field, kFixed64);
  std::uint64_t bits;
  std::memcpy(&bits, &v, 8);
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(bits >> (8 * b)));
}

void put_float_bits(std::string& out, float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>(bits >> (8 * b)));
}

void put_int64_bits(std::string& out, std::int64_t v) {
  const auto bits = static_cast<std::uint64_t>(v);
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(bits >> (8 * b)));
}

float float_from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double double_from_bits(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

// ---- reading ----

WireReader::WireReader(std::string_view bytes, std::size_t base, std::string format, std::string context)
    : data_(reinterpret_cast<const unsigned char*>(bytes.data())),
      size_(bytes.size()),
      base_(base),
      format_(std::move(format)),
      context_(std::move(context)) {}

void WireReader::fail_at(const std::string& what, std::size_t at) const {
  throw FormatError(str_cat(format_, ": ", what, " in ", context_, " at byte ", at));
}

std::uint64_t WireReader::varint() {
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

bool WireReader::tag(std::uint32_t& field, int& wire) {
  if (done()) return false;
  const std::size_t start = offset();
  const std::uint64_t key = varint();
  field = static_cast<std::uint32_t>(key >> 3);
  wire = static_cast<int>(key & 7);
  if (field == 0 || (key >> 3) > 0x1fffffff) fail_at(str_cat("invalid field number ", key >> 3), start);
  return true;
}

std::string_view WireReader::length_delimited(std::size_t& value_offset) {
  const std::size_t start = offset();
  const std::uint64_t length = varint();
  if (length > size_ - pos_)
    fail_at(str_cat("length ", length, " runs past the end of the message (", size_ - pos_, " bytes left)"), start);
  value_offset = offset();
  std::string_view view(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(length));
  pos_ += static_cast<std::size_t>(length);
  return view;
}

std::uint32_t WireReader::fixed32() {
  if (size_ - pos_ < 4) fail("truncated fixed32");
  std::uint32_t v = data_[pos_] | (data_[pos_ + 1] << 8) | (data_[pos_ + 2] << 16) |
                    (static_cast<std::uint32_t>(data_[pos_ + 3]) << 24);
  pos_ += 4;
  return v;
}

std::uint64_t WireReader::fixed64() {
  if (size_ - pos_ < 8) fail("truncated fixed64");
  std::uint64_t v = 0;
  for (int b = 7; b >= 0; --b) v = (v << 8) | data_[pos_ + static_cast<std::size_t>(b)];
  pos_ += 8;
  return v;
}

void WireReader::skip(int wire) {
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

void WireReader::expect_wire(int wire, int expected, std::uint32_t field) const {
  if (wire != expected) fail(str_cat("field ", field, " has wire type ", wire, ", expected ", expected));
}

}  // namespace petal::data::protobuf
