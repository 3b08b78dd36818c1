// A small JSON value, parser and writer helpers for the files nn reads and
// writes (safetensors headers, checkpoints' metadata, results and history).
// The parser is strict and bounded: it never reads past its input and reports
// the byte offset of the first problem as a FormatError.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace petal::nn::json {

class Value {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Value() = default;
  static Value boolean(bool b);
  static Value number(double d, std::string literal = "");
  static Value string(std::string s);
  static Value array(std::vector<Value> items);
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
  // An exact non-negative integer (the literal has no fraction or exponent and
  // fits in 63 bits), for sizes and offsets that must not be rounded.
  std::uint64_t as_uint(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  const std::vector<Value>& as_array(std::string_view what) const;
  // Members in file order (duplicate keys are rejected by the parser).
  const std::vector<std::pair<std::string, Value>>& as_object(std::string_view what) const;
  // Member lookup on an object; null when absent.
  const Value* find(std::string_view key) const;

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string text_;  // string value, or the number's literal
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

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
