// The safetensors format, read and written here: an 8-byte little-endian
// header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// data that follows the header) plus an optional "__metadata__" map of
// strings, then the raw little-endian tensor data.
//
// Reading validates the whole header against the file size before any tensor
// is read (the path must be a regular file): a bad length, bad JSON, an unknown field type, a shape whose size
// does not match its byte range, or a range beyond the file is a FormatError
// naming the file, the tensor and the offsets. Nothing is allocated from a
// size the file merely claims.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace petal::nn {

// The largest header read (docs/limits.md): 100 MiB (the reference
// implementation stops at 100 MB). Real headers are a few KiB to a few MiB; the JSON
// caps (nn/json.hpp) bound what it costs in memory.
inline constexpr std::uint64_t kSafetensorsMaxHeaderBytes = std::uint64_t{100} << 20;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "F64", "I64", "U8", ... (others listed but not readable)
  Shape shape;
  std::uint64_t begin = 0;  // byte range within the data section
  std::uint64_t end = 0;
};

using Metadata = std::map<std::string, std::string>;

class SafetensorsReader {
 public:
  explicit SafetensorsReader(std::filesystem::path path);

  const std::filesystem::path& path() const { return path_; }
  // In file order of the header.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(std::string_view name) const;
  const Metadata& metadata() const { return metadata_; }

  // Reads one tensor into a new CPU tensor of its dtype.
  Tensor read(const SafetensorsEntry& entry) const;
  Tensor read(std::string_view name) const;  // FormatError when absent
  // Reads into an existing contiguous CPU tensor of the same shape and dtype.
  void read_into(const SafetensorsEntry& entry, Tensor& destination) const;

 private:
  std::filesystem::path path_;
  std::uint64_t data_start_ = 0;
  std::uint64_t data_size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  Metadata metadata_;
};

// Writes tensors (any layout, CPU or not; stored contiguous) in the given order
// with the metadata, atomically. Names must be unique and non-empty.
void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const Metadata& metadata = {});

// "F32" <-> DType; nullopt for safetensors dtypes petal has no tensor type for.
std::optional<DType> safetensors_dtype(std::string_view name);
const char* safetensors_dtype_name(DType dtype);

}  // namespace petal::nn
