// A small JSON value, parser and writer helpers for the files nn reads and
// writes (safetensors headers, checkpoints' metadata, results and history).
// The parser is strict (RFC 8259: no leading zeros, no lone surrogates, no
// duplicate keys) and bounded: it never reads past its input, checks the caps
// below before allocating what they guard, and reports the byte offset of the
// first problem as a FormatError.
//
// Values are compact (16 bytes; an object member 32 bytes plus its key's
// bytes; a string its bytes beyond 8) and every array, object and string is
// allocated at its exact size, so a document costs at most about 8 times its
// text (a 2-byte "0," element), never the 64 times of a tree of std::vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace petal::nn::json {

// Caps on one document (docs/limits.md).
// Arrays and objects nested deeper than this are refused (the parser recurses).
inline constexpr int kMaxDepth = 64;
// Elements of one array or members of one object: 2^20 (a safetensors header
// of a very large model lists a few thousand tensors).
inline constexpr std::size_t kMaxContainerItems = std::size_t{1} << 20;
// Values in one document (keys not counted): 2^22, at most 64 MiB of values.
inline constexpr std::size_t kMaxValues = std::size_t{1} << 22;

// A read-only view of contiguous items: what as_array / as_object return.
template <class T>
class Items {
 public:
  Items() = default;
  Items(const T* data, std::size_t size) : data_(data), size_(size) {}
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  const T* data_ = nullptr;
  std::size_t size_ = 0;
};

struct Member;

class Value {
 public:
  enum class Kind : std::uint8_t { Null, Bool, Number, String, Array, Object };

  Value() noexcept : uint_(0) {}
  Value(const Value& other);
  Value(Value&& other) noexcept;
  Value& operator=(const Value& other);
  Value& operator=(Value&& other) noexcept;
  ~Value();

  static Value boolean(bool b);
  static Value number(double d);
  // An exact non-negative integer (what as_uint returns unchanged).
  static Value integer(std::uint64_t u);
  static Value string(std::string_view s);
  static Value array(std::vector<Value> items);
  // Keys must be unique (FormatError otherwise).
  static Value object(std::vector<std::pair<std::string, Value>> members);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Number; }

  // Accessors throw FormatError naming `what` when the kind differs.
  bool as_bool(std::string_view what) const;
  double as_number(std::string_view what) const;
  // An exact non-negative integer (the literal has no sign, fraction or
  // exponent and is below 2^62), for sizes and offsets that must not be rounded.
  std::uint64_t as_uint(std::string_view what) const;
  // Views into this value, valid while it lives unchanged.
  std::string_view as_string(std::string_view what) const;
  Items<Value> as_array(std::string_view what) const;
  // Members in file order (duplicate keys are rejected by the parser).
  Items<Member> as_object(std::string_view what) const;
  // Member lookup on an object; null when absent (or not an object).
  const Value* find(std::string_view key) const;

 private:
  friend class Builder;
  void release() noexcept;
  void copy_from(const Value& other);

  union {
    double number_;
    std::uint64_t uint_;
    bool bool_;
    char inline_chars_[8];  // strings of up to 8 bytes
    char* chars_;           // longer strings: size_ bytes
    Value* items_;          // size_ values
    Member* members_;       // one block: size_ members, then their keys' bytes
  };
  std::uint32_t size_ = 0;
  Kind kind_ = Kind::Null;
  bool is_integer_ = false;  // a Number held in uint_
};

// A member's key: a view of bytes stored in its object's block. It converts
// to std::string_view and (copying) to std::string, so code written for the
// std::string keys of earlier versions still compiles.
class Key {
 public:
  Key() = default;
  explicit Key(std::string_view s) : view_(s) {}
  operator std::string_view() const { return view_; }
  operator std::string() const { return std::string(view_); }
  std::string_view view() const { return view_; }
  std::size_t size() const { return view_.size(); }
  bool empty() const { return view_.empty(); }
  friend bool operator==(const Key& a, const Key& b) { return a.view_ == b.view_; }
  friend bool operator==(const Key& a, std::string_view b) { return a.view_ == b; }
  friend bool operator==(const Key& a, const char* b) { return a.view_ == b; }
  friend bool operator==(const Key& a, const std::string& b) { return a.view_ == b; }
  friend std::ostream& operator<<(std::ostream& out, const Key& key) { return out << key.view_; }

 private:
  std::string_view view_;
};

struct Member {
  Key first;
  Value second;
};

static_assert(sizeof(Value) == 16, "json::Value is meant to stay compact");

// Parses one JSON document (trailing spaces allowed, nothing else). `source`
// names the input in error messages, e.g. "model.safetensors header".
Value parse(std::string_view text, std::string_view source);

// ---- writing ----
// A quoted, escaped JSON string.
std::string quote(std::string_view s);
// A number that round-trips (shortest form of a double); NaN and infinities
// become null, which JSON has no literal for.
std::string number(double d);
std::string number_array(const std::vector<double>& values);

}  // namespace petal::nn::json
