// The JSON parser of nn/json.cpp (safetensors headers, checkpoint metadata).
// Invariants:
//  - parse throws petal::Error or returns a value nested at most 65 levels;
//  - dump -> parse gives the same value (kinds, member order, strings byte for
//    byte, numbers bit for bit) and dumping that again gives the same text;
//  - accessors of the wrong kind throw FormatError; find() returns the member;
//  - quote() of any bytes (the input itself) parses back to those bytes.
#include <cmath>
#include <string>

#include "fuzz_common.hpp"
#include "nn/json.hpp"

using namespace petal;
namespace json = petal::nn::json;
using Kind = json::Value::Kind;

namespace {

// Serializes with the writer helpers petal's files use (quote, number).
void dump(const json::Value& v, std::string& out) {
  switch (v.kind()) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += v.as_bool("dump") ? "true" : "false"; break;
    case Kind::Number: {
      const double d = v.as_number("dump");
      // A literal too large for a double parses to an infinity; write one back.
      out += std::isinf(d) ? (d > 0 ? "1e999" : "-1e999") : json::number(d);
      break;
    }
    case Kind::String: out += json::quote(v.as_string("dump")); break;
    case Kind::Array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.as_array("dump")) {
        if (!first) out += ',';
        first = false;
        dump(item, out);
      }
      out += ']';
      break;
    }
    case Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.as_object("dump")) {
        if (!first) out += ',';
        first = false;
        out += json::quote(key);
        out += ':';
        dump(item, out);
      }
      out += '}';
      break;
    }
  }
}

bool same(const json::Value& a, const json::Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Null: return true;
    case Kind::Bool: return a.as_bool("") == b.as_bool("");
    case Kind::Number: return fuzz::same_bits(a.as_number(""), b.as_number(""));
    case Kind::String: return a.as_string("") == b.as_string("");
    case Kind::Array: {
      const auto& x = a.as_array("");
      const auto& y = b.as_array("");
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!same(x[i], y[i])) return false;
      return true;
    }
    case Kind::Object: {
      const auto& x = a.as_object("");
      const auto& y = b.as_object("");
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i].first != y[i].first || !same(x[i].second, y[i].second)) return false;
      return true;
    }
  }
  return false;
}
template <class Fn>
void expect_format_error(const char* what, Fn&& fn, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  fuzz::expect_throws<FormatError>("FormatError", what, fn, file, line);
}

// Checks accessors and returns the nesting depth.
int walk(const json::Value& v) {
  const Kind k = v.kind();
  if (k != Kind::Bool) expect_format_error("as_bool", [&] { v.as_bool("x"); });
  if (k != Kind::Number) {
    expect_format_error("as_number", [&] { v.as_number("x"); });
    expect_format_error("as_uint", [&] { v.as_uint("x"); });
  } else {
    std::uint64_t u = 0;
    if (fuzz::expect_ok_or_error("as_uint", [&] { u = v.as_uint("x"); }))
      FUZZ_CHECK(u <= (std::uint64_t{1} << 62) && static_cast<double>(u) == v.as_number("x"), "as_uint ", u,
                 " vs as_number ", v.as_number("x"));
  }
  if (k != Kind::String) expect_format_error("as_string", [&] { v.as_string("x"); });
  if (k != Kind::Array) expect_format_error("as_array", [&] { v.as_array("x"); });
  if (k != Kind::Object) {
    expect_format_error("as_object", [&] { v.as_object("x"); });
    FUZZ_CHECK(v.find("") == nullptr);
  }
  int depth = 0;
  if (k == Kind::Array)
    for (const auto& item : v.as_array("x")) depth = std::max(depth, walk(item));
  if (k == Kind::Object)
    for (const auto& [key, item] : v.as_object("x")) {
      FUZZ_CHECK(v.find(key) == &item, "find(\"", key, "\") is not the member (duplicate key accepted?)");
      depth = std::max(depth, walk(item));
    }
  return depth + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  json::Value quoted;
  fuzz::expect_ok("parse(quote(input))", [&] { quoted = json::parse(json::quote(text), "quoted input"); });
  FUZZ_CHECK(quoted.is_string() && quoted.as_string("") == text, "quote -> parse changed the string");

  json::Value value;
  if (!fuzz::expect_ok_or_error("json::parse", [&] { value = json::parse(text, "fuzz input"); })) return 0;
  const int depth = walk(value);
  FUZZ_CHECK(depth <= 65, "nesting depth ", depth, " accepted");

  std::string dumped;
  dump(value, dumped);
  json::Value again;
  fuzz::expect_ok("parse(dump(value))", [&] { again = json::parse(dumped, "dumped"); });
  FUZZ_CHECK(same(value, again), "dump -> parse changed the value; dump: ", dumped.substr(0, 200));
  std::string dumped_again;
  dump(again, dumped_again);
  FUZZ_CHECK(dumped_again == dumped, "dump is not stable");
  return 0;
}
