// TFRecord files: a sequence of records, each framed as
//   uint64 length (LE) | uint32 masked_crc32c(length) | payload | uint32 masked_crc32c(payload).
// The reader streams one record at a time and never trusts a length before
// comparing it with what is left of the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace petal::data {

// A corrupt record. what() is "FILE: record R at byte B: reason" (R 0-based,
// B the offset where the record starts), the line tfrecord_inspect prints.
class RecordError : public FormatError {
 public:
  RecordError(std::string file, std::int64_t record, std::uint64_t offset, std::string reason);
  const std::string& file() const { return file_; }
  std::int64_t record() const { return record_; }
  std::uint64_t offset() const { return offset_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string file_;
  std::int64_t record_;
  std::uint64_t offset_;
  std::string reason_;
};

// The longest record read by default (docs/limits.md): 2 GiB, TensorFlow's
// own protobuf limit. Every length is also checked against what is left of
// the file before anything is allocated.
inline constexpr std::uint64_t kMaxTFRecordBytes = std::uint64_t{1} << 31;

struct TFRecordReaderOptions {
  bool verify_crc = true;  // check both CRCs of every record
  // Records claiming more than this are refused before any allocation, even
  // when the file is big enough (a guard against absurd lengths in huge files).
  std::uint64_t max_record_bytes = kMaxTFRecordBytes;
};

class TFRecordReader {
 public:
  // Throws IOError when the file cannot be opened or is not a regular file.
  explicit TFRecordReader(std::filesystem::path path, TFRecordReaderOptions options = {});
  ~TFRecordReader();
  TFRecordReader(const TFRecordReader&) = delete;
  TFRecordReader& operator=(const TFRecordReader&) = delete;
  TFRecordReader(TFRecordReader&& other) noexcept;
  TFRecordReader& operator=(TFRecordReader&& other) noexcept;

  // Reads the next record into payload (reusing its capacity). Returns false
  // at the clean end of the file; throws RecordError on a corrupt record.
  bool read(std::string& payload);
  // Steps over the next record, checking its length CRC and that the payload
  // fits in the file but not reading it. Returns false at the end of the file.
  bool skip();

  // Index and byte offset of the record the next read() returns.
  std::int64_t next_record_index() const { return record_index_; }
  std::uint64_t next_record_offset() const { return offset_; }
  std::uint64_t file_size() const { return file_size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  // Reads the 12-byte header; returns the payload length, or false at EOF.
  bool read_header(std::uint64_t& length);
  [[noreturn]] void fail(const std::string& reason) const;
  void read_exact(void* dst, std::size_t n, const char* what);
  void close();

  std::filesystem::path path_;
  TFRecordReaderOptions options_;
  std::FILE* file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::uint64_t offset_ = 0;  // start of the next record
  std::int64_t record_index_ = 0;
};

class TFRecordWriter {
 public:
  enum class Create { Truncate, Exclusive };
  // Creates or truncates the file; throws IOError on failure. With
  // Create::Exclusive an existing file is an IOError (and stays untouched).
  explicit TFRecordWriter(std::filesystem::path path, Create create = Create::Truncate);
  ~TFRecordWriter();  // closes without throwing; call close() to see errors
  TFRecordWriter(const TFRecordWriter&) = delete;
  TFRecordWriter& operator=(const TFRecordWriter&) = delete;

  void write(std::string_view payload);
  void flush();
  void close();
  std::int64_t records_written() const { return records_; }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::int64_t records_ = 0;
};

// Number of records in a file, found by walking the headers (length CRCs are
// checked, payloads are not read). Throws RecordError on a corrupt frame.
std::int64_t count_tfrecords(const std::filesystem::path& path);

// The 16 framing bytes that surround a payload, for tests and writers:
// header (length + masked CRC) and footer (masked CRC of the payload).
std::string tfrecord_frame(std::string_view payload);

}  // namespace petal::data
