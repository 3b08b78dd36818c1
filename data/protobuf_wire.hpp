// Protocol Buffers' wire format without libprotobuf: the primitives that
// petal's tf.train.Example codec (data/example.cpp) and ONNX writer
// (nn/onnx_export.cpp) build messages from, and a bounds-checked reader that
// decodes them back. A message is built inside out: encode the submessage
// into its own string, then append it to the parent as a length-delimited
// field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace petal::data::protobuf {

enum WireType : int { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// ---- writing (each appends to `out`) ----

void put_varint(std::string& out, std::uint64_t v);
void put_tag(std::string& out, std::uint32_t field, int wire);
// A string, bytes or submessage field.
void put_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes);
// An int32/int64/enum/bool field; negative values take ten bytes, as the
// protobuf encoding of a negative int64 does.
void put_varint_field(std::string& out, std::uint32_t field, std::int64_t v);
// A float field (fixed32, IEEE 754 bits little-endian).
void put_float_field(std::string& out, std::uint32_t field, float v);
// A double field (fixed64, IEEE 754 bits little-endian).
void put_double_field(std::string& out, std::uint32_t field, double v);
// The little-endian bytes of v: packed floats, ONNX raw_data.
void put_float_bits(std::string& out, float v);
void put_int64_bits(std::string& out, std::int64_t v);

float float_from_bits(std::uint32_t bits);
double double_from_bits(std::uint64_t bits);

// ---- reading ----

// Reads protobuf wire data from a view of a larger payload. `base` is the
// view's offset in the whole payload, `format` what the payload is
// ("Example") and `context` the message being read, so every error (a
// FormatError) says where it happened: "<format>: <what> in <context> at byte N".
class WireReader {
 public:
  WireReader(std::string_view bytes, std::size_t base, std::string format, std::string context);

  bool done() const { return pos_ == size_; }
  std::size_t offset() const { return base_ + pos_; }
  const std::string& format() const { return format_; }
  const std::string& context() const { return context_; }

  [[noreturn]] void fail(const std::string& what) const { fail_at(what, offset()); }
  [[noreturn]] void fail_at(const std::string& what, std::size_t at) const;

  std::uint64_t varint();
  // The next field's number and wire type; false at the end of the message.
  bool tag(std::uint32_t& field, int& wire);
  // A length-delimited value; value_offset receives its offset in the payload.
  std::string_view length_delimited(std::size_t& value_offset);
  std::uint32_t fixed32();
  std::uint64_t fixed64();
  void skip(int wire);
  void expect_wire(int wire, int expected, std::uint32_t field) const;

 private:
  const unsigned char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::size_t base_;
  std::string format_;
  std::string context_;
};

}  // namespace petal::data::protobuf
