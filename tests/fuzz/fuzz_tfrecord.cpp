// TFRecord framing: the input is a whole .tfrecord file.
// Invariants:
//  - reading with CRC checks either fails with petal::Error or yields records
//    whose re-framing (tfrecord_frame) reproduces the input byte for byte;
//    next_record_offset() advances by 16 + length per record and ends at the
//    file size;
//  - count_tfrecords, skip() and a reader without payload CRC checks agree
//    with it (same count; the unchecked reader sees the same payloads);
//  - TFRecordWriter of the records writes the input again, and reading that
//    gives the same records.
#include <string>
#include <vector>

#include "data/tfrecord.hpp"
#include "fuzz_common.hpp"

using namespace petal;
using namespace petal::data;

namespace {

// Reads every record; false when the reader threw a petal::Error.
bool read_all(const std::filesystem::path& path, bool verify_crc, std::vector<std::string>& records,
              std::uint64_t file_size) {
  records.clear();
  return fuzz::expect_ok_or_error("TFRecordReader::read", [&] {
    TFRecordReaderOptions options;
    options.verify_crc = verify_crc;
    TFRecordReader reader(path, options);
    FUZZ_CHECK(reader.file_size() == file_size, reader.file_size(), " vs ", file_size);
    std::string payload;
    while (true) {
      const std::uint64_t before = reader.next_record_offset();
      FUZZ_CHECK(reader.next_record_index() == static_cast<std::int64_t>(records.size()));
      if (!reader.read(payload)) {
        FUZZ_CHECK(before == file_size, "clean end at byte ", before, " of ", file_size);
        break;
      }
      FUZZ_CHECK(reader.next_record_offset() == before + 16 + payload.size(), "offset ", reader.next_record_offset(),
                 " after a ", payload.size(), "-byte record at ", before);
      records.push_back(payload);
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile input("tfrecord-input");
  static fuzz::MemFile output("tfrecord-output");
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  input.assign(bytes);

  std::vector<std::string> checked, unchecked;
  const bool ok = read_all(input.path(), true, checked, size);
  const bool ok_unchecked = read_all(input.path(), false, unchecked, size);

  std::int64_t counted = -1;
  const bool count_ok = fuzz::expect_ok_or_error("count_tfrecords", [&] { counted = count_tfrecords(input.path()); });
  // skip() checks what count_tfrecords checks: the framing and length CRCs.
  FUZZ_CHECK(count_ok == ok_unchecked, "count_tfrecords ", count_ok ? "succeeded" : "failed",
             " but the reader without payload CRCs ", ok_unchecked ? "succeeded" : "failed");
  if (count_ok) FUZZ_CHECK(counted == static_cast<std::int64_t>(unchecked.size()), counted, " vs ", unchecked.size());

  if (!ok) return 0;
  FUZZ_CHECK(ok_unchecked && unchecked == checked, "CRC-checked and unchecked readers disagree");

  // The framing is canonical: the records and their CRCs determine the file.
  std::string reframed;
  for (const auto& r : checked) {
    const std::string frame = tfrecord_frame(r);
    reframed.append(frame, 0, 12).append(r).append(frame, 12, 4);
  }
  FUZZ_CHECK(reframed == bytes, "re-framing ", checked.size(), " records does not give the input back");

  // Writer -> reader round trip.
  fuzz::expect_ok("TFRecordWriter", [&] {
    TFRecordWriter writer(output.path());
    for (const auto& r : checked) writer.write(r);
    FUZZ_CHECK(writer.records_written() == static_cast<std::int64_t>(checked.size()));
    writer.close();
  });
  FUZZ_CHECK(output.contents() == bytes, "TFRecordWriter output differs from the input it was read from");
  std::vector<std::string> reread;
  FUZZ_CHECK(read_all(output.path(), true, reread, size), "cannot read back what TFRecordWriter wrote");
  FUZZ_CHECK(reread == checked);
  return 0;
}
