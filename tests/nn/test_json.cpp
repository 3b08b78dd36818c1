// nn/json: strictness (RFC 8259) and bounded cost (issue 17).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <string>

#include "core/error.hpp"
#include "nn/json.hpp"

using namespace petal;
namespace json = petal::nn::json;

// Counts the bytes live on the heap while `counting` is set, so a test can
// check what a parse retains and its peak, deterministically.
namespace {
bool counting = false;
std::size_t live_bytes = 0;
std::size_t peak_bytes = 0;
}  // namespace

void* operator new(std::size_t size) {
  auto* block = static_cast<std::size_t*>(std::malloc(size + 16));
  if (!block) throw std::bad_alloc();
  block[0] = size;
  block[1] = counting;
  if (counting) {
    live_bytes += size;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  }
  return block + 2;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  auto* block = static_cast<std::size_t*>(p) - 2;
  if (block[1] && counting) live_bytes -= block[0];
  std::free(block);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

std::string error_of(std::string_view text) {
  try {
    json::parse(text, "test.json");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

bool rejects(std::string_view text, std::string_view needle) {
  const std::string message = error_of(text);
  INFO(text << " -> " << message);
  return !message.empty() && message.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("values, accessors and members in file order") {
  const json::Value v = json::parse(R"({"b": [1, 2.5, "x"], "a": {"deep": true}, "s": "a long string value", "n": null})",
                                    "doc");
  std::string keys;
  for (const auto& [key, value] : v.as_object("doc")) keys += std::string(key) + ",";
  CHECK(keys == "b,a,s,n,");
  CHECK(v.find("b")->as_array("b").size() == 3);
  CHECK(v.find("b")->as_array("b")[0].as_uint("b[0]") == 1);
  CHECK(v.find("b")->as_array("b")[1].as_number("b[1]") == 2.5);
  CHECK(v.find("b")->as_array("b")[2].as_string("b[2]") == "x");
  CHECK(v.find("a")->find("deep")->as_bool("deep"));
  CHECK(v.find("s")->as_string("s") == "a long string value");
  CHECK(v.find("n")->is_null());
  CHECK(v.find("missing") == nullptr);
  CHECK_THROWS_AS(v.find("s")->as_number("s"), FormatError);
  CHECK_THROWS_AS(v.find("b")->as_array("b")[1].as_uint("b[1]"), FormatError);

  json::Value copy = v;  // deep copies stay valid after the original goes
  json::Value moved = std::move(copy);
  CHECK(moved.find("s")->as_string("s") == "a long string value");
  CHECK(moved.find("a")->find("deep")->as_bool("deep"));

  CHECK(json::parse("18446744073709551615", "max").as_number("max") == 18446744073709551615.0);
  CHECK_THROWS_AS(json::parse("4611686018427387905", "big").as_uint("big"), FormatError);  // 2^62 + 1
  CHECK(json::parse("4611686018427387904", "2^62").as_uint("2^62") == (std::uint64_t{1} << 62));
  CHECK(json::parse("1e-400", "tiny").as_number("tiny") == 0.0);
  CHECK(rejects("1e400", "out of the range"));
  CHECK(json::parse(R"("\ud83d\ude00 \u00e9")", "emoji").as_string("emoji") == "\xF0\x9F\x98\x80 \xC3\xA9");
}

TEST_CASE("leading zeros are not JSON") {
  for (const char* bad : {"01", "-01", "00", "[1, 02]", "-00.5", "012e3"}) CHECK(rejects(bad, "leading zero"));
  for (const char* good : {"0", "-0", "0.5", "-0.5", "10", "0e5", "[0, 0]"}) CHECK_NOTHROW(json::parse(good, "ok"));
}

TEST_CASE("lone surrogates are not JSON") {
  CHECK(rejects(R"("\ud800")", "lone high surrogate"));
  CHECK(rejects(R"("\ud800x")", "lone high surrogate"));
  CHECK(rejects(R"("\ud800\u0041")", "lone high surrogate"));
  CHECK(rejects(R"("\ud800\ud800")", "lone high surrogate"));
  CHECK(rejects(R"("\udc00")", "lone low surrogate"));
  CHECK(rejects(R"("ab\udfff")", "lone low surrogate"));
  CHECK(rejects(R"({"\udc00": 1})", "lone low surrogate"));
}

TEST_CASE("nesting, element and value counts are capped") {
  const int depth = json::kMaxDepth + 1;  // the outermost value is at depth 0
  CHECK_NOTHROW(json::parse(std::string(depth, '[') + std::string(depth, ']'), "deep"));
  CHECK(rejects(std::string(depth + 1, '[') + std::string(depth + 1, ']'), "nesting too deep"));
  CHECK(rejects(std::string(100000, '['), "nesting too deep"));

  std::string too_long = "[";
  for (std::size_t i = 0; i <= json::kMaxContainerItems; ++i) too_long += i ? ",0" : "0";
  too_long += "]";
  CHECK(rejects(too_long, "array of more than 1048576 elements"));

  // kMaxValues + 1 values, no container over its own cap.
  std::string many = "[";
  const std::size_t per_array = json::kMaxContainerItems - 1;
  std::size_t values = 1;
  while (values <= json::kMaxValues) {
    many += values > 1 ? ",[" : "[";
    ++values;
    for (std::size_t i = 0; i < per_array && values <= json::kMaxValues; ++i, ++values) many += i ? ",0" : "0";
    many += "]";
  }
  many += "]";
  CHECK(rejects(many, "more than 4194304 values"));
}

TEST_CASE("duplicate keys are found in n log n: 160k keys in a 10 MB header") {
  constexpr int kKeys = 160000;
  std::string header = "{";
  for (std::int64_t i = 0; i < kKeys; ++i) {
    header += "\"block_" + std::to_string(i) + "/kernel\":{\"dtype\":\"F32\",\"shape\":[3,3,32,32],\"data_offsets\":[" +
              std::to_string(i * 36864) + "," + std::to_string((i + 1) * 36864) + "]},";
  }
  const std::string unique = header.substr(0, header.size() - 1) + "}";
  REQUIRE(unique.size() > 10'000'000);
  const auto start = std::chrono::steady_clock::now();
  const json::Value v = json::parse(unique, "big.safetensors header");
  CHECK(v.as_object("header").size() == kKeys);
  // A key repeated at the very end, the worst case for a pairwise check.
  const std::string repeated = header + "\"block_7/kernel\":1}";
  const std::string message = error_of(repeated);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(message.find("duplicate key \"block_7/kernel\"") != std::string::npos);
  CHECK(message.find(std::to_string(header.size())) != std::string::npos);  // the offset of the repeat
  // The pairwise check took about a minute here; sorting takes a fraction of
  // a second (the bound is loose for sanitizer builds on shared machines).
  CHECK(seconds < 10.0);
}

TEST_CASE("a parsed document costs a bounded multiple of its text") {
  CHECK(sizeof(json::Value) == 16);
  CHECK(sizeof(json::Member) == 32);
  // The worst case: one-digit numbers, 2 bytes of text each.
  constexpr std::size_t kCount = 200000;
  std::string text = "[";
  for (std::size_t i = 0; i < kCount; ++i) text += i ? ",0" : "0";
  text += "]";
  live_bytes = peak_bytes = 0;
  counting = true;
  std::size_t retained = 0;
  {
    json::Value v = json::parse(text, "zeros");
    retained = live_bytes;
    CHECK(v.as_array("zeros").size() == kCount);
  }
  counting = false;
  MESSAGE("zeros: " << retained / kCount << " bytes per value retained, " << peak_bytes / kCount << " at the peak");
  CHECK(retained <= 16 * kCount + 64);  // exact-size arrays, no growth slack
  CHECK(peak_bytes <= 48 * kCount + 4096);  // plus the scratch stack, at most twice the items

  // Safetensors-shaped entries, where the old tree cost ~16x its text.
  std::string header = "{";
  for (int i = 0; i < 5000; ++i)
    header += std::string(i ? "," : "") + "\"layer_" + std::to_string(i) +
              "/kernel\":{\"dtype\":\"F32\",\"shape\":[64,64],\"data_offsets\":[0,16384]}";
  header += "}";
  live_bytes = peak_bytes = 0;
  counting = true;
  {
    json::Value v = json::parse(header, "header");
    retained = live_bytes;
  }
  counting = false;
  MESSAGE("safetensors header: " << static_cast<double>(retained) / static_cast<double>(header.size())
                                  << " bytes retained per byte of text");
  CHECK(retained <= 4 * header.size());
}

TEST_CASE("other malformed documents name the byte offset") {
  CHECK(rejects("", "byte 0: unexpected end"));
  CHECK(rejects("[1,]", "byte 3"));
  CHECK(rejects(R"({"a" 1})", "expected ':'"));
  CHECK(rejects("[1] x", "trailing data"));
  CHECK(rejects("\"a\tb\"", "control character"));
  CHECK(rejects("-", "expected a digit"));
  CHECK(rejects("1.", "expected a digit"));
  CHECK(rejects("tru", "expected 'true'"));
  CHECK_THROWS_AS(json::Value::object({{"k", json::Value()}, {"k", json::Value()}}), FormatError);
}
