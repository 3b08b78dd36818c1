#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/random.hpp"
#include "data/crc32c.hpp"
#include "data/tfrecord.hpp"
#include "temp_dir.hpp"

using namespace petal::data;
using petal::data::testing::TempDir;
using petal::data::testing::read_bytes;
using petal::data::testing::write_bytes;

namespace {

std::vector<std::string> sample_payloads() {
  std::vector<std::string> payloads = {"", "x", std::string(1000, 'a'), "binary\0\xff\x01 data"};
  petal::Generator gen(3);
  std::string big(70000, '\0');
  for (auto& c : big) c = static_cast<char>(gen.next_u64());
  payloads.push_back(big);
  return payloads;
}

std::vector<std::string> read_all(const std::filesystem::path& path) {
  TFRecordReader reader(path);
  std::vector<std::string> out;
  std::string payload;
  while (reader.read(payload)) out.push_back(payload);
  return out;
}

// Reads every record, expecting a RecordError; returns it.
RecordError expect_record_error(const std::filesystem::path& path) {
  try {
    read_all(path);
  } catch (const RecordError& e) {
    return e;
  }
  FAIL("no RecordError for " << path.string());
  return RecordError("", 0, 0, "");
}

}  // namespace

TEST_CASE("TFRecord writer -> reader round trip") {
  TempDir dir;
  const auto path = dir / "round.tfrec";
  const auto payloads = sample_payloads();
  {
    TFRecordWriter writer(path);
    for (const auto& p : payloads) writer.write(p);
    CHECK(writer.records_written() == static_cast<std::int64_t>(payloads.size()));
    writer.close();
  }
  CHECK(read_all(path) == payloads);
  CHECK(count_tfrecords(path) == static_cast<std::int64_t>(payloads.size()));

  std::uint64_t expected_size = 0;
  for (const auto& p : payloads) expected_size += p.size() + 16;
  CHECK(std::filesystem::file_size(path) == expected_size);

  SUBCASE("skip and offsets") {
    TFRecordReader reader(path);
    CHECK(reader.skip());
    CHECK(reader.next_record_index() == 1);
    CHECK(reader.next_record_offset() == 16);
    std::string payload;
    CHECK(reader.read(payload));
    CHECK(payload == "x");
    CHECK(reader.next_record_offset() == 16 + 17);
  }
  SUBCASE("empty file has no records") {
    write_bytes(dir / "empty.tfrec", "");
    CHECK(read_all(dir / "empty.tfrec").empty());
  }
}

TEST_CASE("TFRecord framing matches the flowers shards") {
  const auto path = petal::data::testing::flowers_dir() / "flowers00-230.tfrec";
  REQUIRE(std::filesystem::exists(path));
  TFRecordReader reader(path);
  std::string payload;
  REQUIRE(reader.read(payload));
  CHECK(payload.size() == 15312);
  // Our framing of that payload is byte-identical to the file's.
  const std::string frame = tfrecord_frame(payload);
  const std::string head = read_bytes(path).substr(0, 12 + payload.size() + 4);
  CHECK(head.substr(0, 12) == frame.substr(0, 12));
  CHECK(head.substr(12 + payload.size()) == frame.substr(12));
}

TEST_CASE("corrupt TFRecord files give a RecordError naming file, record and byte") {
  TempDir dir;
  const auto good = dir / "good.tfrec";
  {
    TFRecordWriter writer(good);
    writer.write("first record");
    writer.write("second record payload");
    writer.write("third");
  }
  const std::string bytes = read_bytes(good);
  const std::uint64_t second_start = 16 + 12;  // "first record" is 12 bytes

  SUBCASE("corrupted payload") {
    std::string bad = bytes;
    bad[second_start + 12 + 3] ^= 0x20;
    write_bytes(dir / "bad.tfrec", bad);
    const RecordError e = expect_record_error(dir / "bad.tfrec");
    CHECK(e.record() == 1);
    CHECK(e.offset() == second_start);
    CHECK(e.reason().find("payload CRC mismatch") != std::string::npos);
    CHECK(std::string(e.what()).find("bad.tfrec: record 1 at byte 28: payload CRC") != std::string::npos);
  }
  SUBCASE("corrupted length") {
    std::string bad = bytes;
    bad[second_start + 1] = 0x7f;  // claims a 32 KB payload
    write_bytes(dir / "bad.tfrec", bad);
    const RecordError e = expect_record_error(dir / "bad.tfrec");
    CHECK(e.record() == 1);
    CHECK(e.offset() == second_start);
    CHECK(e.reason().find("length CRC mismatch") != std::string::npos);
  }
  SUBCASE("huge length with a valid CRC is checked against the file size") {
    std::string bad = bytes.substr(0, second_start);
    bad += tfrecord_frame(std::string(1, 'z')).substr(0, 12);
    // Rewrite the length to 2^40 with a matching CRC.
    std::string header(12, '\0');
    const std::uint64_t length = std::uint64_t{1} << 40;
    for (int i = 0; i < 8; ++i) header[i] = static_cast<char>(length >> (8 * i));
    const std::uint32_t crc = mask_crc(crc32c(header.data(), 8));
    for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>(crc >> (8 * i));
    bad.replace(second_start, 12, header);
    write_bytes(dir / "bad.tfrec", bad + "some bytes");
    const RecordError e = expect_record_error(dir / "bad.tfrec");
    CHECK(e.record() == 1);
    CHECK(e.reason().find("truncated payload") != std::string::npos);
  }
  SUBCASE("file truncated inside a payload") {
    write_bytes(dir / "bad.tfrec", bytes.substr(0, second_start + 12 + 5));
    const RecordError e = expect_record_error(dir / "bad.tfrec");
    CHECK(e.record() == 1);
    CHECK(e.offset() == second_start);
    CHECK(e.reason().find("truncated payload") != std::string::npos);
  }
  SUBCASE("file truncated inside a header") {
    write_bytes(dir / "bad.tfrec", bytes.substr(0, second_start + 7));
    const RecordError e = expect_record_error(dir / "bad.tfrec");
    CHECK(e.record() == 1);
    CHECK(e.reason().find("truncated header") != std::string::npos);
  }
  SUBCASE("file truncated inside the payload CRC") {
    write_bytes(dir / "bad.tfrec", bytes.substr(0, bytes.size() - 2));
    const RecordError e = expect_record_error(dir / "bad.tfrec");
    CHECK(e.record() == 2);
  }
  SUBCASE("random bytes") {
    petal::Generator gen(11);
    std::string noise(5000, '\0');
    for (auto& c : noise) c = static_cast<char>(gen.next_u64());
    write_bytes(dir / "noise.tfrec", noise);
    const RecordError e = expect_record_error(dir / "noise.tfrec");
    CHECK(e.record() == 0);
    CHECK(e.offset() == 0);
    CHECK_THROWS_AS(count_tfrecords(dir / "noise.tfrec"), petal::FormatError);
  }
  SUBCASE("CRC checks can be turned off for payloads only") {
    std::string bad = bytes;
    bad[second_start + 12 + 3] ^= 0x20;
    write_bytes(dir / "bad.tfrec", bad);
    TFRecordReaderOptions options;
    options.verify_crc = false;
    TFRecordReader reader(dir / "bad.tfrec", options);
    std::string payload;
    int n = 0;
    while (reader.read(payload)) ++n;
    CHECK(n == 3);
  }
}

TEST_CASE("unreadable TFRecord paths give IOError") {
  TempDir dir;
  CHECK_THROWS_AS(TFRecordReader(dir / "missing.tfrec"), petal::IOError);
  CHECK_THROWS_AS(TFRecordReader(dir.path()), petal::IOError);
  CHECK_THROWS_AS(TFRecordWriter(dir / "no" / "such" / "dir.tfrec"), petal::IOError);
}
