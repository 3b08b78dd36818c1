// The HDF5 signature test, compiled with or without libhdf5 (it needs none),
// so a file's format can be named even where Keras files cannot be read.
#include <cstring>
#include <fstream>

#include "nn/hdf5_file.hpp"

namespace petal::nn::hdf5 {

bool has_hdf5_signature(const std::filesystem::path& path) {
  static constexpr char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  // The superblock sits at 0, 512, 1024, 2048, ... (after a user block).
  for (std::uint64_t offset = 0; offset <= (std::uint64_t{1} << 20); offset = offset == 0 ? 512 : offset * 2) {
    char buffer[8] = {};
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(buffer, sizeof buffer)) return false;
    if (std::memcmp(buffer, kSignature, sizeof buffer) == 0) return true;
  }
  return false;
}

}  // namespace petal::nn::hdf5
