#include "data/tfrecord.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include "data/crc32c.hpp"

namespace petal::data {
namespace {

constexpr std::size_t kHeaderBytes = 12;  // length + its CRC
constexpr std::size_t kFooterBytes = 4;   // payload CRC

std::uint64_t load_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint32_t load_u32_le(const unsigned char* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
void store_u64_le(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void store_u32_le(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

RecordError::RecordError(std::string file, std::int64_t record, std::uint64_t offset, std::string reason)
    : FormatError(str_cat(file, ": record ", record, " at byte ", offset, ": ", reason)),
      file_(std::move(file)),
      record_(record),
      offset_(offset),
      reason_(std::move(reason)) {}

// ---- reader ----

TFRecordReader::TFRecordReader(std::filesystem::path path, TFRecordReaderOptions options)
    : path_(std::move(path)), options_(options) {
  // Checked before fopen, which blocks on a FIFO until a writer comes.
  std::error_code ec;
  const auto status = std::filesystem::status(path_, ec);
  if (std::filesystem::is_directory(status))
    throw IOError(str_cat("cannot read TFRecord file '", path_.string(), "': it is a directory"));
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw IOError(str_cat("cannot read TFRecord file '", path_.string(), "': not a regular file"));
  file_ = std::fopen(path_.c_str(), "rb");
  if (!file_) throw IOError(str_cat("cannot open TFRecord file '", path_.string(), "': ", std::strerror(errno)));
  const auto size = std::filesystem::file_size(path_, ec);
  if (ec) {
    close();
    throw IOError(str_cat("cannot get the size of '", path_.string(), "': ", ec.message()));
  }
  file_size_ = size;
  // Records are read whole, so a larger stdio buffer mainly saves syscalls.
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 16);
}

TFRecordReader::~TFRecordReader() { close(); }

TFRecordReader::TFRecordReader(TFRecordReader&& other) noexcept
    : path_(std::move(other.path_)),
      options_(other.options_),
      file_(std::exchange(other.file_, nullptr)),
      file_size_(other.file_size_),
      offset_(other.offset_),
      record_index_(other.record_index_) {}

TFRecordReader& TFRecordReader::operator=(TFRecordReader&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    options_ = other.options_;
    file_ = std::exchange(other.file_, nullptr);
    file_size_ = other.file_size_;
    offset_ = other.offset_;
    record_index_ = other.record_index_;
  }
  return *this;
}

void TFRecordReader::close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void TFRecordReader::fail(const std::string& reason) const {
  throw RecordError(path_.string(), record_index_, offset_, reason);
}

void TFRecordReader::read_exact(void* dst, std::size_t n, const char* what) {
  if (n == 0) return;
  if (std::fread(dst, 1, n, file_) != n) {
    // The size was checked against the file size, so this is a real I/O error
    // or a file that shrank while we read it.
    fail(str_cat("cannot read ", n, " bytes of ", what, std::ferror(file_) ? ": I/O error" : ": unexpected end of file"));
  }
}

bool TFRecordReader::read_header(std::uint64_t& length) {
  PETAL_CHECK(file_ != nullptr, IOError, "TFRecordReader: '", path_.string(), "' is closed");
  if (offset_ == file_size_) return false;
  const std::uint64_t remaining = file_size_ - offset_;
  if (remaining < kHeaderBytes)
    fail(str_cat("truncated header: ", remaining, " bytes left, a header needs ", kHeaderBytes));
  unsigned char header[kHeaderBytes];
  read_exact(header, kHeaderBytes, "the record header");
  length = load_u64_le(header);
  const std::uint32_t stored = load_u32_le(header + 8);
  // The length CRC is always checked: a corrupt length would otherwise make
  // us skip to a random place in the file.
  const std::uint32_t expected = mask_crc(crc32c(header, 8));
  if (stored != expected)
    fail(str_cat("length CRC mismatch (stored ", hex32(stored), ", computed ", hex32(expected),
                 "; length field reads ", length, ")"));
  const std::uint64_t after_header = remaining - kHeaderBytes;
  if (after_header < kFooterBytes || length > after_header - kFooterBytes)
    fail(str_cat("truncated payload: length ", length, " + ", kFooterBytes, " CRC bytes but only ",
                 after_header, " bytes left in the file"));
  if (length > options_.max_record_bytes)
    fail(str_cat("record length ", length, " exceeds the limit of ", options_.max_record_bytes, " bytes"));
  return true;
}

bool TFRecordReader::read(std::string& payload) {
  std::uint64_t length = 0;
  if (!read_header(length)) return false;
  payload.resize(static_cast<std::size_t>(length));
  read_exact(payload.data(), payload.size(), "the payload");
  unsigned char footer[kFooterBytes];
  read_exact(footer, kFooterBytes, "the payload CRC");
  if (options_.verify_crc) {
    const std::uint32_t stored = load_u32_le(footer);
    const std::uint32_t expected = mask_crc(crc32c(payload));
    if (stored != expected)
      fail(str_cat("payload CRC mismatch (stored ", hex32(stored), ", computed ", hex32(expected), ", ", length,
                   "-byte payload)"));
  }
  offset_ += kHeaderBytes + length + kFooterBytes;
  ++record_index_;
  return true;
}

bool TFRecordReader::skip() {
  std::uint64_t length = 0;
  if (!read_header(length)) return false;
  const std::uint64_t next = offset_ + kHeaderBytes + length + kFooterBytes;
  if (std::fseek(file_, static_cast<long>(next), SEEK_SET) != 0)
    fail(str_cat("cannot seek to byte ", next, ": ", std::strerror(errno)));
  offset_ = next;
  ++record_index_;
  return true;
}

std::int64_t count_tfrecords(const std::filesystem::path& path) {
  TFRecordReader reader(path);
  while (reader.skip()) {
  }
  return reader.next_record_index();
}

// ---- writer ----

std::string tfrecord_frame(std::string_view payload) {
  std::string frame(kHeaderBytes + kFooterBytes, '\0');
  auto* p = reinterpret_cast<unsigned char*>(frame.data());
  store_u64_le(p, payload.size());
  store_u32_le(p + 8, mask_crc(crc32c(p, 8)));
  store_u32_le(p + kHeaderBytes, mask_crc(crc32c(payload)));
  return frame;
}

TFRecordWriter::TFRecordWriter(std::filesystem::path path, Create create) : path_(std::move(path)) {
  file_ = std::fopen(path_.c_str(), create == Create::Exclusive ? "wbx" : "wb");
  if (!file_) throw IOError(str_cat("cannot create TFRecord file '", path_.string(), "': ", std::strerror(errno)));
}

TFRecordWriter::~TFRecordWriter() {
  if (file_) std::fclose(file_);
}

void TFRecordWriter::write(std::string_view payload) {
  PETAL_CHECK(file_ != nullptr, IOError, "TFRecordWriter: '", path_.string(), "' is closed");
  const std::string frame = tfrecord_frame(payload);
  const bool ok = std::fwrite(frame.data(), 1, kHeaderBytes, file_) == kHeaderBytes &&
                  std::fwrite(payload.data(), 1, payload.size(), file_) == payload.size() &&
                  std::fwrite(frame.data() + kHeaderBytes, 1, kFooterBytes, file_) == kFooterBytes;
  if (!ok)
    throw IOError(str_cat("cannot write record ", records_, " to '", path_.string(), "': ", std::strerror(errno)));
  ++records_;
}

void TFRecordWriter::flush() {
  if (file_ && std::fflush(file_) != 0)
    throw IOError(str_cat("cannot flush '", path_.string(), "': ", std::strerror(errno)));
}

void TFRecordWriter::close() {
  if (!file_) return;
  std::FILE* f = std::exchange(file_, nullptr);
  if (std::fclose(f) != 0) throw IOError(str_cat("cannot close '", path_.string(), "': ", std::strerror(errno)));
}

}  // namespace petal::data
