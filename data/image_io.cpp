#include "data/image_io.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "data/jpeg.hpp"
#include "data/png.hpp"

namespace petal::data {

std::string read_file(const std::filesystem::path& path, std::uint64_t max_bytes) {
  // Checked before fopen: opening a FIFO blocks until a writer comes.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec) throw IOError(str_cat("cannot open '", path.string(), "': ", ec.message()));
  if (!std::filesystem::is_regular_file(status))
    throw IOError(str_cat("cannot read '", path.string(), "': not a regular file"));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw IOError(str_cat("cannot open '", path.string(), "': ", std::strerror(errno)));
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw IOError(str_cat("cannot get the size of '", path.string(), "': ", ec.message()));
  if (size > max_bytes)
    throw IOError(str_cat("'", path.string(), "' has ", size, " bytes, more than the limit of ", max_bytes));
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    throw IOError(str_cat("cannot read ", size, " bytes from '", path.string(), "'"));
  return bytes;
}

bool looks_like_jpeg(std::string_view bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF;
}

bool looks_like_png(std::string_view bytes) { return bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8); }

void decode_image_into(std::string_view bytes, Image& out, std::string_view source, std::int64_t max_pixels) {
  if (looks_like_jpeg(bytes)) {
    JpegDecodeOptions options;
    options.max_pixels = max_pixels;
    decode_jpeg_into(bytes, out, options, source);
  } else if (looks_like_png(bytes)) {
    PngDecodeOptions options;
    options.max_pixels = max_pixels;
    out = decode_png(bytes, options, source);
  } else {
    throw FormatError(str_cat(source, ": neither JPEG nor PNG (", bytes.size(), " bytes)"));
  }
  // Batching code takes height * width * 3 bytes on trust.
  PETAL_CHECK(out.channels == 3, FormatError, source, ": decoded to ", out.channels, " channels instead of 3");
}

Image decode_image(std::string_view bytes, std::string_view source, std::int64_t max_pixels) {
  Image image;
  decode_image_into(bytes, image, source, max_pixels);
  return image;
}

Image read_image(const std::filesystem::path& path, std::int64_t max_pixels) {
  return decode_image(read_file(path), path.string(), max_pixels);
}

}  // namespace petal::data
