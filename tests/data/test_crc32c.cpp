#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/random.hpp"
#include "data/crc32c.hpp"

using namespace petal::data;

TEST_CASE("crc32c known vectors") {
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("a") == 0xC1D04330u);
  CHECK(crc32c("123456789") == 0xE3069283u);
  // RFC 3720 (iSCSI) B.4 test patterns.
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  CHECK(crc32c(ascending) == 0x46DD794Eu);
}

TEST_CASE("crc32c table and hardware paths agree at every length and alignment") {
  petal::Generator gen(7);
  std::vector<unsigned char> data(300);
  for (auto& b : data) b = static_cast<unsigned char>(gen.next_u64());
  for (std::size_t start = 0; start < 9; ++start)
    for (std::size_t len = 0; start + len <= data.size(); len += 7)
      REQUIRE(crc32c_extend(0, data.data() + start, len) == crc32c_extend_table(0, data.data() + start, len));
  CHECK(crc32c_extend_table(0, "123456789", 9) == 0xE3069283u);
  const std::string path = crc32c_uses_hardware() ? "SSE4.2 instruction" : "table";
  MESSAGE("crc32c_extend uses the " << path);
}

TEST_CASE("crc32c_extend continues a checksum") {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (std::size_t split = 0; split <= text.size(); ++split) {
    const std::uint32_t first = crc32c(text.data(), split);
    REQUIRE(crc32c_extend(first, text.data() + split, text.size() - split) == crc32c(text));
  }
}

TEST_CASE("TFRecord CRC masking") {
  // The first record of flowers00-230.tfrec: length 15312 and its masked CRC.
  const unsigned char length[8] = {0xd0, 0x3b, 0, 0, 0, 0, 0, 0};
  CHECK(mask_crc(crc32c(length, 8)) == 0xd173cdc6u);
  for (std::uint32_t v : {0u, 1u, 0xE3069283u, 0xffffffffu}) CHECK(unmask_crc(mask_crc(v)) == v);
}
