// safetensors reading (nn/safetensors.cpp): the input is a whole file.
// Invariants:
//  - SafetensorsReader throws petal::Error or lists entries whose byte ranges
//    lie inside the data section and hold exactly numel * itemsize bytes;
//  - read() of a supported dtype returns the entry's shape and exactly the
//    file's bytes at that range; unsupported dtypes throw DTypeError;
//  - write_safetensors of what was read, with the metadata, reads back to the
//    same names, dtypes, shapes, bytes and metadata, and writing that again
//    gives the same file.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_common.hpp"
#include "nn/safetensors.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::uint64_t itemsize(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  return 1;
}

struct Loaded {
  std::vector<std::pair<std::string, Tensor>> tensors;
  Metadata metadata;
};

// Reads a file, checks every entry and returns its readable tensors.
Loaded check_file(const std::filesystem::path& path, std::string_view bytes) {
  Loaded out;
  SafetensorsReader reader(path);
  FUZZ_CHECK(bytes.size() >= 8);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  FUZZ_CHECK(header_len <= bytes.size() - 8, "header length ", header_len, " accepted for a ", bytes.size(), "-byte file");
  const std::uint64_t data_start = 8 + header_len;
  const std::uint64_t data_size = bytes.size() - data_start;
  out.metadata = reader.metadata();
  for (const SafetensorsEntry& e : reader.entries()) {
    FUZZ_CHECK(e.begin <= e.end && e.end <= data_size, "\"", e.name, "\": [", e.begin, ", ", e.end, "] in ", data_size,
               " data bytes");
    std::uint64_t numel = 1;
    for (std::int64_t d : e.shape) {
      FUZZ_CHECK(d >= 0);
      numel *= static_cast<std::uint64_t>(d);
    }
    FUZZ_CHECK(e.end - e.begin == numel * itemsize(e.dtype), "\"", e.name, "\": ", e.end - e.begin, " bytes for ",
               numel, " x ", e.dtype);
    FUZZ_CHECK(reader.find(e.name) == &e, "find(\"", e.name, "\") is another entry");
    if (!safetensors_dtype(e.dtype)) {
      try {
        reader.read(e);
        FUZZ_CHECK(false, "read of unsupported dtype ", e.dtype, " succeeded");
      } catch (const DTypeError&) {
      }
      continue;
    }
    Tensor t = reader.read(e);
    FUZZ_CHECK(t.shape() == e.shape && t.dtype() == *safetensors_dtype(e.dtype), "\"", e.name, "\" read as ",
               shape_str(t.shape()));
    FUZZ_CHECK(t.nbytes() == e.end - e.begin);
    FUZZ_CHECK(t.nbytes() == 0 ||
                   std::memcmp(t.raw_data(), bytes.data() + data_start + e.begin, t.nbytes()) == 0,
               "\"", e.name, "\": bytes read differ from the file");
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile input("safetensors-input");
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  input.assign(bytes);
  Loaded loaded;
  if (!fuzz::expect_ok_or_error("SafetensorsReader", [&] { loaded = check_file(input.path(), bytes); })) return 0;

  // Round trip through the writer (an empty name is readable but not writable).
  std::vector<std::pair<std::string, Tensor>> writable;
  for (auto& [name, t] : loaded.tensors)
    if (!name.empty()) writable.emplace_back(name, t);
  const std::filesystem::path file = fuzz::scratch_dir() / "roundtrip.safetensors";
  std::string written;
  fuzz::expect_ok("write -> read", [&] {
    write_safetensors(file, writable, loaded.metadata);
    written = fuzz::MemFile::read_path(file);
    const Loaded again = check_file(file, written);
    FUZZ_CHECK(again.metadata == loaded.metadata, "metadata changed in a round trip");
    FUZZ_CHECK(again.tensors.size() == writable.size());
    for (std::size_t i = 0; i < writable.size(); ++i) {
      const Tensor& a = writable[i].second;
      const Tensor& b = again.tensors[i].second;
      FUZZ_CHECK(again.tensors[i].first == writable[i].first && a.shape() == b.shape() && a.dtype() == b.dtype() &&
                     (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0),
                 "tensor \"", writable[i].first, "\" changed in a round trip");
    }
    write_safetensors(file, again.tensors, again.metadata);
    FUZZ_CHECK(fuzz::MemFile::read_path(file) == written, "writing a read-back file is not stable");
  });
  return 0;
}
