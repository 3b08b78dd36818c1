// tf.train.Example caps (issue 17): lists are sized from counts taken on the
// wire and checked against per-Example caps before they grow, so hostile
// records of empty entries cannot cost many times their size.
#include <doctest/doctest.h>

#include <string>

#include "data/example.hpp"
#include "protobuf_writer.hpp"

using namespace petal;
using namespace petal::data;
using namespace petal::data::testing;

namespace {

// A Features map entry whose list (field 1 bytes, 2 floats, 3 int64s) is `list`.
std::string entry(const std::string& key, std::uint32_t list_field, const std::string& list) {
  return field(1, field(1, key) + field(2, field(list_field, list)));
}
std::string example_of(const std::string& entries) { return field(1, entries); }

std::string empty_bytes_values(std::size_t n) {
  std::string list;
  list.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) list += std::string("\x0a\x00", 2);
  return list;
}

std::string error_of(const std::string& payload) {
  try {
    decode_example(payload);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("empty bytes_list entries: lists reserve their exact size, the cap is checked before they grow") {
  const std::size_t n = kMaxExampleBytesValues;
  const Example at_cap = decode_example(example_of(entry("names", 1, empty_bytes_values(n))));
  const auto& names = at_cap.bytes_list("names");
  CHECK(names.size() == n);
  CHECK(names.capacity() == n);  // no doubling slack

  const std::string message = error_of(example_of(entry("names", 1, empty_bytes_values(n + 1))));
  CHECK(message.find("more than 1048576 bytes_list values in one Example") != std::string::npos);
  CHECK(message.find("feature 'names' bytes_list") != std::string::npos);
  // The cap holds for all features together, and for a list repeated under one key.
  const std::string half = empty_bytes_values(n / 2 + 1);
  CHECK(!error_of(example_of(entry("a", 1, half) + entry("b", 1, half))).empty());
  CHECK(!error_of(example_of(entry("a", 1, half) + entry("a", 1, half))).empty());
}

TEST_CASE("numeric lists reserve what the wire holds, packed or not") {
  std::string packed_ints;
  for (int i = 0; i < 1000; ++i) varint(packed_ints, static_cast<std::uint64_t>(i) * 1000);
  std::string unpacked_ints;
  for (int i = 0; i < 10; ++i) {
    unpacked_ints += '\x08';
    varint(unpacked_ints, static_cast<std::uint64_t>(i));
  }
  const std::string packed_floats(4 * 300, '\0');
  const Example ex = decode_example(example_of(entry("ints", 3, field(1, packed_ints) + unpacked_ints) +
                                               entry("floats", 2, field(1, packed_floats))));
  CHECK(ex.int64_list("ints").size() == 1010);
  CHECK(ex.int64_list("ints").capacity() == 1010);
  CHECK(ex.int64_list("ints")[999] == 999000);
  CHECK(ex.float_list("floats").size() == 300);
  CHECK(ex.float_list("floats").capacity() == 300);
}

TEST_CASE("features per Example are capped") {
  std::string entries;
  for (std::size_t i = 0; i <= kMaxExampleFeatures; ++i) entries += entry(std::to_string(i), 3, "");
  CHECK(error_of(example_of(entries)).find("more than 65536 features") != std::string::npos);
}
