#include "nn/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace petal::nn::json {

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}
Value Value::number(double d, std::string literal) {
  Value v;
  v.kind_ = Kind::Number;
  v.number_ = d;
  v.text_ = std::move(literal);
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.text_ = std::move(s);
  return v;
}
Value Value::array(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::Array;
  v.items_ = std::move(items);
  return v;
}
Value Value::object(std::vector<std::pair<std::string, Value>> members) {
  Value v;
  v.kind_ = Kind::Object;
  v.members_ = std::move(members);
  return v;
}

namespace {
const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "a boolean";
    case Value::Kind::Number: return "a number";
    case Value::Kind::String: return "a string";
    case Value::Kind::Array: return "an array";
    case Value::Kind::Object: return "an object";
  }
  return "?";
}
}  // namespace

#define PETAL_JSON_EXPECT(KIND, NAME)                                                              \
  PETAL_CHECK(kind_ == Kind::KIND, FormatError, what, ": expected " NAME ", found ", kind_name(kind_))

bool Value::as_bool(std::string_view what) const {
  PETAL_JSON_EXPECT(Bool, "a boolean");
  return bool_;
}
double Value::as_number(std::string_view what) const {
  PETAL_JSON_EXPECT(Number, "a number");
  return number_;
}
std::uint64_t Value::as_uint(std::string_view what) const {
  PETAL_JSON_EXPECT(Number, "a number");
  std::uint64_t out = 0;
  const char* begin = text_.data();
  const char* end = begin + text_.size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  PETAL_CHECK(ec == std::errc() && ptr == end && !text_.empty() && out <= (std::uint64_t{1} << 62), FormatError,
              what, ": expected a non-negative integer below 2^62, found ", text_);
  return out;
}
const std::string& Value::as_string(std::string_view what) const {
  PETAL_JSON_EXPECT(String, "a string");
  return text_;
}
const std::vector<Value>& Value::as_array(std::string_view what) const {
  PETAL_JSON_EXPECT(Array, "an array");
  return items_;
}
const std::vector<std::pair<std::string, Value>>& Value::as_object(std::string_view what) const {
  PETAL_JSON_EXPECT(Object, "an object");
  return members_;
}
const Value* Value::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

namespace {

// Recursive descent with a depth limit so hostile input cannot overflow the stack.
class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Value document() {
    Value v = value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected trailing data");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(std::string_view why) const {
    throw FormatError(str_cat(source_, ": invalid JSON at byte ", pos_, ": ", why));
  }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  char peek() {
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_];
  }
  void expect_literal(std::string_view lit) {
    if (text_.substr(pos_, lit.size()) != lit) fail(str_cat("expected '", lit, "'"));
    pos_ += lit.size();
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    skip_space();
    char c = peek();
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Value::string(string());
    if (c == 't') { expect_literal("true"); return Value::boolean(true); }
    if (c == 'f') { expect_literal("false"); return Value::boolean(false); }
    if (c == 'n') { expect_literal("null"); return Value(); }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail(str_cat("unexpected character '", c, "'"));
  }

  Value object(int depth) {
    ++pos_;  // {
    std::vector<std::pair<std::string, Value>> members;
    skip_space();
    if (peek() == '}') { ++pos_; return Value::object(std::move(members)); }
    while (true) {
      skip_space();
      if (peek() != '"') fail("expected a string key");
      std::string key = string();
      for (const auto& m : members)
        if (m.first == key) fail(str_cat("duplicate key \"", key, "\""));
      skip_space();
      if (peek() != ':') fail("expected ':'");
      ++pos_;
      Value v = value(depth + 1);
      members.emplace_back(std::move(key), std::move(v));
      skip_space();
      char c = peek();
      ++pos_;
      if (c == '}') break;
      if (c != ',') fail("expected ',' or '}'");
    }
    return Value::object(std::move(members));
  }

  Value array(int depth) {
    ++pos_;  // [
    std::vector<Value> items;
    skip_space();
    if (peek() == ']') { ++pos_; return Value::array(std::move(items)); }
    while (true) {
      items.push_back(value(depth + 1));
      skip_space();
      char c = peek();
      ++pos_;
      if (c == ']') break;
      if (c != ',') fail("expected ',' or ']'");
    }
    return Value::array(std::move(items));
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::uint32_t hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    std::uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      char h = text_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= static_cast<std::uint32_t>(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return cp;
  }

  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      char c = peek();
      ++pos_;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (text_.substr(pos_, 2) != "\\u") fail("unpaired surrogate");
            pos_ += 2;
            std::uint32_t low = hex4();
            if (low < 0xDC00 || low >= 0xE000) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  Value number() {
    std::size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    auto digits = [&] {
      std::size_t d = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      if (pos_ == d) fail("expected a digit");
    };
    digits();
    if (pos_ < text_.size() && text_[pos_] == '.') { ++pos_; digits(); }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      digits();
    }
    std::string literal(text_.substr(start, pos_ - start));
    double d = std::strtod(literal.c_str(), nullptr);
    return Value::number(d, std::move(literal));
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
};

}  // namespace

Value parse(std::string_view text, std::string_view source) { return Parser(text, source).document(); }

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double d) {
  if (!std::isfinite(d)) return "null";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, ptr);
}

std::string number_array(const std::vector<double>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += number(values[i]);
  }
  return out + "]";
}

}  // namespace petal::nn::json
