#include "nn/json.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "core/error.hpp"

namespace petal::nn::json {

namespace {

constexpr std::uint32_t kInlineChars = 8;
constexpr std::uint64_t kMaxExactUint = std::uint64_t{1} << 62;
// Below this many keys a pairwise comparison beats sorting.
constexpr std::size_t kSmallObject = 16;

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

// The index of the first key (in order) equal to an earlier one, or n.
// Sorting keeps this O(n log n) whatever the keys, unlike a hash set that
// crafted collisions can make quadratic.
std::size_t find_duplicate(const std::string_view* keys, std::size_t n) {
  if (n <= kSmallObject) {
    for (std::size_t i = 1; i < n; ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (keys[i] == keys[j]) return i;
    return n;
  }
  std::vector<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  std::sort(order.begin(), order.end(), [keys](std::uint32_t a, std::uint32_t b) {
    const int c = keys[a].compare(keys[b]);
    return c != 0 ? c < 0 : a < b;
  });
  std::size_t first = n;
  for (std::size_t i = 1; i < n; ++i)
    if (keys[order[i]] == keys[order[i - 1]]) first = std::min<std::size_t>(first, order[i]);
  return first;
}

}  // namespace

// Allocates containers and strings at their exact sizes.
class Builder {
 public:
  static Value make_string(std::string_view s) {
    PETAL_CHECK(s.size() <= std::numeric_limits<std::uint32_t>::max(), ValueError, "JSON string of ", s.size(),
                " bytes is too long");
    Value v;
    v.kind_ = Value::Kind::String;
    v.size_ = static_cast<std::uint32_t>(s.size());
    if (s.size() <= kInlineChars) {
      if (!s.empty()) std::memcpy(v.inline_chars_, s.data(), s.size());
    } else {
      v.chars_ = new char[s.size()];
      std::memcpy(v.chars_, s.data(), s.size());
    }
    return v;
  }

  // Moves values[0, n) into a new array.
  static Value make_array(Value* values, std::size_t n) {
    PETAL_CHECK(n <= kMaxContainerItems, ValueError, "JSON array of ", n, " elements exceeds the limit of ",
                kMaxContainerItems);
    Value v;
    v.kind_ = Value::Kind::Array;
    v.items_ = n ? static_cast<Value*>(::operator new(n * sizeof(Value))) : nullptr;
    for (std::size_t i = 0; i < n; ++i) new (&v.items_[i]) Value(std::move(values[i]));
    v.size_ = static_cast<std::uint32_t>(n);
    return v;
  }

  // Moves values[0, n) into a new object under copies of keys[0, n).
  static Value make_object(const std::string_view* keys, Value* values, std::size_t n) {
    PETAL_CHECK(n <= kMaxContainerItems, ValueError, "JSON object of ", n, " members exceeds the limit of ",
                kMaxContainerItems);
    std::size_t key_bytes = 0;
    for (std::size_t i = 0; i < n; ++i) key_bytes += keys[i].size();
    Value v;
    v.kind_ = Value::Kind::Object;
    if (n == 0) return v;
    void* block = ::operator new(n * sizeof(Member) + key_bytes);
    v.members_ = static_cast<Member*>(block);
    char* key_chars = static_cast<char*>(block) + n * sizeof(Member);
    for (std::size_t i = 0; i < n; ++i) {
      if (!keys[i].empty()) std::memcpy(key_chars, keys[i].data(), keys[i].size());
      new (&v.members_[i]) Member{Key(std::string_view(key_chars, keys[i].size())), std::move(values[i])};
      key_chars += keys[i].size();
    }
    v.size_ = static_cast<std::uint32_t>(n);
    return v;
  }
};

void Value::release() noexcept {
  switch (kind_) {
    case Kind::String:
      if (size_ > kInlineChars) delete[] chars_;
      break;
    case Kind::Array:
      for (std::uint32_t i = 0; i < size_; ++i) items_[i].~Value();
      ::operator delete(items_);
      break;
    case Kind::Object:
      for (std::uint32_t i = 0; i < size_; ++i) members_[i].~Member();
      ::operator delete(members_);
      break;
    default: break;
  }
  uint_ = 0;
  size_ = 0;
  kind_ = Kind::Null;
  is_integer_ = false;
}

void Value::copy_from(const Value& other) {
  switch (other.kind_) {
    case Kind::String: *this = Builder::make_string(other.as_string("")); return;
    case Kind::Array: {
      std::vector<Value> items(other.items_, other.items_ + other.size_);
      *this = Builder::make_array(items.data(), items.size());
      return;
    }
    case Kind::Object: {
      std::vector<std::string_view> keys;
      std::vector<Value> values;
      keys.reserve(other.size_);
      values.reserve(other.size_);
      for (const Member& m : other.as_object("")) {
        keys.push_back(m.first);
        values.push_back(m.second);
      }
      *this = Builder::make_object(keys.data(), values.data(), keys.size());
      return;
    }
    default:
      uint_ = other.uint_;
      size_ = other.size_;
      kind_ = other.kind_;
      is_integer_ = other.is_integer_;
  }
}

Value::Value(const Value& other) : Value() { copy_from(other); }

Value::Value(Value&& other) noexcept : uint_(other.uint_), size_(other.size_), kind_(other.kind_),
                                       is_integer_(other.is_integer_) {
  other.uint_ = 0;
  other.size_ = 0;
  other.kind_ = Kind::Null;
  other.is_integer_ = false;
}

Value& Value::operator=(const Value& other) {
  if (this != &other) {
    Value copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Value& Value::operator=(Value&& other) noexcept {
  if (this != &other) {
    release();
    uint_ = other.uint_;
    size_ = other.size_;
    kind_ = other.kind_;
    is_integer_ = other.is_integer_;
    other.uint_ = 0;
    other.size_ = 0;
    other.kind_ = Kind::Null;
    other.is_integer_ = false;
  }
  return *this;
}

Value::~Value() { release(); }

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}
Value Value::number(double d) {
  Value v;
  v.kind_ = Kind::Number;
  v.number_ = d;
  return v;
}
Value Value::integer(std::uint64_t u) {
  Value v;
  v.kind_ = Kind::Number;
  v.uint_ = u;
  v.is_integer_ = true;
  return v;
}
Value Value::string(std::string_view s) { return Builder::make_string(s); }
Value Value::array(std::vector<Value> items) { return Builder::make_array(items.data(), items.size()); }
Value Value::object(std::vector<std::pair<std::string, Value>> members) {
  std::vector<std::string_view> keys;
  std::vector<Value> values;
  keys.reserve(members.size());
  values.reserve(members.size());
  for (auto& [key, value] : members) {
    keys.push_back(key);
    values.push_back(std::move(value));
  }
  const std::size_t dup = find_duplicate(keys.data(), keys.size());
  PETAL_CHECK(dup == keys.size(), FormatError, "json::Value::object: duplicate key \"", keys[dup], "\"");
  return Builder::make_object(keys.data(), values.data(), keys.size());
}

#define PETAL_JSON_EXPECT(KIND, NAME)                                                              \
  PETAL_CHECK(kind_ == Kind::KIND, FormatError, what, ": expected " NAME ", found ", kind_name(kind_))

bool Value::as_bool(std::string_view what) const {
  PETAL_JSON_EXPECT(Bool, "a boolean");
  return bool_;
}
double Value::as_number(std::string_view what) const {
  PETAL_JSON_EXPECT(Number, "a number");
  return is_integer_ ? static_cast<double>(uint_) : number_;
}
std::uint64_t Value::as_uint(std::string_view what) const {
  PETAL_JSON_EXPECT(Number, "a number");
  PETAL_CHECK(is_integer_ && uint_ <= kMaxExactUint, FormatError, what,
              ": expected a non-negative integer below 2^62, found ",
              is_integer_ ? std::to_string(uint_) : json::number(number_));
  return uint_;
}
std::string_view Value::as_string(std::string_view what) const {
  PETAL_JSON_EXPECT(String, "a string");
  return {size_ <= kInlineChars ? inline_chars_ : chars_, size_};
}
Items<Value> Value::as_array(std::string_view what) const {
  PETAL_JSON_EXPECT(Array, "an array");
  return {items_, size_};
}
Items<Member> Value::as_object(std::string_view what) const {
  PETAL_JSON_EXPECT(Object, "an object");
  return {members_, size_};
}
const Value* Value::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (std::uint32_t i = 0; i < size_; ++i)
    if (members_[i].first == key) return &members_[i].second;
  return nullptr;
}

namespace {

// Recursive descent with a depth limit so hostile input cannot overflow the
// stack. Open containers collect their items on shared scratch stacks and are
// allocated at their exact size when they close.
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
  struct PendingKey {
    std::size_t chars_begin;  // in key_chars_
    std::size_t size;
    std::size_t offset;  // in the text, for messages
  };

  [[noreturn]] void fail(std::string_view why) const { fail_at(pos_, why); }
  [[noreturn]] void fail_at(std::size_t offset, std::string_view why) const {
    throw FormatError(str_cat(source_, ": invalid JSON at byte ", offset, ": ", why));
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
    if (depth > kMaxDepth) fail(str_cat("nesting too deep (more than ", kMaxDepth, " levels)"));
    if (++value_count_ > kMaxValues) fail(str_cat("more than ", kMaxValues, " values in one document"));
    skip_space();
    const char c = peek();
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Builder::make_string(string());
    if (c == 't') { expect_literal("true"); return Value::boolean(true); }
    if (c == 'f') { expect_literal("false"); return Value::boolean(false); }
    if (c == 'n') { expect_literal("null"); return Value(); }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail(str_cat("unexpected character '", c, "'"));
  }

  // Right after an object's '{' or an array's '[': true (and consumed) when
  // the closing bracket follows at once.
  bool closes_empty(char close) {
    skip_space();
    if (peek() != close) return false;
    ++pos_;
    return true;
  }

  // After a member or element: consumes the ',' before the next one (false)
  // or the closing bracket (true); anything else is an error.
  bool ends_container(char close) {
    skip_space();
    const char c = peek();
    ++pos_;
    if (c == close) return true;
    if (c != ',') fail(str_cat("expected ',' or '", close, "'"));
    return false;
  }

  Value object(int depth) {
    ++pos_;  // {
    const std::size_t value_base = values_.size();
    const std::size_t key_base = keys_.size();
    const std::size_t chars_base = key_chars_.size();
    if (closes_empty('}')) return Builder::make_object(nullptr, nullptr, 0);
    while (true) {
      skip_space();
      if (keys_.size() - key_base == kMaxContainerItems)
        fail(str_cat("object of more than ", kMaxContainerItems, " members"));
      if (peek() != '"') fail("expected a string key");
      const std::size_t key_offset = pos_;
      const std::string_view key = string();
      keys_.push_back({key_chars_.size(), key.size(), key_offset});
      key_chars_.append(key);
      skip_space();
      if (peek() != ':') fail("expected ':'");
      ++pos_;
      values_.push_back(value(depth + 1));
      if (ends_container('}')) break;
    }
    const std::size_t n = keys_.size() - key_base;
    // Views are made only now: key_chars_ may have moved while it grew.
    key_views_.clear();
    for (std::size_t i = key_base; i < keys_.size(); ++i)
      key_views_.emplace_back(key_chars_.data() + keys_[i].chars_begin, keys_[i].size);
    const std::size_t dup = find_duplicate(key_views_.data(), n);
    if (dup != n) fail_at(keys_[key_base + dup].offset, str_cat("duplicate key \"", key_views_[dup], "\""));
    Value out = Builder::make_object(key_views_.data(), values_.data() + value_base, n);
    values_.erase(values_.begin() + static_cast<std::ptrdiff_t>(value_base), values_.end());
    keys_.resize(key_base);
    key_chars_.resize(chars_base);
    return out;
  }

  Value array(int depth) {
    ++pos_;  // [
    const std::size_t base = values_.size();
    if (closes_empty(']')) return Builder::make_array(nullptr, 0);
    while (true) {
      if (values_.size() - base == kMaxContainerItems)
        fail(str_cat("array of more than ", kMaxContainerItems, " elements"));
      values_.push_back(value(depth + 1));
      if (ends_container(']')) break;
    }
    Value out = Builder::make_array(values_.data() + base, values_.size() - base);
    values_.erase(values_.begin() + static_cast<std::ptrdiff_t>(base), values_.end());
    return out;
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
      const char h = text_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= static_cast<std::uint32_t>(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return cp;
  }

  // The unescaped string at pos_ (a view into the text when it has no
  // escapes, else into string_buf_, valid until the next call).
  std::string_view string() {
    ++pos_;  // opening quote
    const std::size_t start = pos_;
    while (true) {
      const char c = peek();
      if (c == '"') {
        ++pos_;
        return check_length(text_.substr(start, pos_ - 1 - start));
      }
      if (c == '\\') break;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      ++pos_;
    }
    string_buf_.assign(text_.substr(start, pos_ - start));
    while (true) {
      const char c = peek();
      ++pos_;
      if (c == '"') return check_length(string_buf_);
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        string_buf_ += c;
        continue;
      }
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': string_buf_ += '"'; break;
        case '\\': string_buf_ += '\\'; break;
        case '/': string_buf_ += '/'; break;
        case 'b': string_buf_ += '\b'; break;
        case 'f': string_buf_ += '\f'; break;
        case 'n': string_buf_ += '\n'; break;
        case 'r': string_buf_ += '\r'; break;
        case 't': string_buf_ += '\t'; break;
        case 'u': {
          const std::size_t escape_at = pos_ - 2;
          std::uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp < 0xE000) fail_at(escape_at, "lone low surrogate");
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (text_.substr(pos_, 2) != "\\u") fail_at(escape_at, "lone high surrogate (no low surrogate follows)");
            pos_ += 2;
            const std::uint32_t low = hex4();
            if (low < 0xDC00 || low >= 0xE000)
              fail_at(escape_at, "lone high surrogate (the next escape is not a low surrogate)");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(string_buf_, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  std::string_view check_length(std::string_view s) const {
    if (s.size() > std::numeric_limits<std::uint32_t>::max()) fail("string longer than 4 GiB");
    return s;
  }

  Value number() {
    const std::size_t start = pos_;
    const bool negative = text_[pos_] == '-';
    if (negative) ++pos_;
    auto is_digit = [&](std::size_t at) { return at < text_.size() && text_[at] >= '0' && text_[at] <= '9'; };
    auto digits = [&] {
      if (!is_digit(pos_)) fail("expected a digit");
      while (is_digit(pos_)) ++pos_;
    };
    if (is_digit(pos_) && text_[pos_] == '0' && is_digit(pos_ + 1)) fail_at(start, "leading zero in a number");
    digits();
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      digits();
      integral = false;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      digits();
      integral = false;
    }
    const char* begin = text_.data() + start;
    const char* end = text_.data() + pos_;
    if (integral && !negative) {
      std::uint64_t u = 0;
      auto [ptr, ec] = std::from_chars(begin, end, u);
      if (ec == std::errc() && ptr == end) return Value::integer(u);
    }
    double d = 0.0;
    auto [ptr, ec] = std::from_chars(begin, end, d);
    if (ec == std::errc::result_out_of_range) {
      // Underflow rounds to zero or a subnormal; overflow has no double.
      d = std::strtod(std::string(begin, end).c_str(), nullptr);
      if (std::isinf(d)) fail_at(start, "number out of the range of a double");
    } else if (ec != std::errc() || ptr != end) {
      fail_at(start, "malformed number");
    }
    return Value::number(d);
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
  std::size_t value_count_ = 0;
  std::vector<Value> values_;  // items of the open containers
  std::vector<PendingKey> keys_;
  std::string key_chars_;
  std::vector<std::string_view> key_views_;
  std::string string_buf_;
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
