// Reading whole files and decoding images of either supported format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "data/image.hpp"

namespace petal::data {

// The largest file read_file reads by default: 1 GiB (docs/limits.md).
inline constexpr std::uint64_t kMaxFileBytes = std::uint64_t{1} << 30;
// The most pixels an image may have by default: 64 Mi (192 MiB as RGB).
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{64} << 20;

// The whole file. Throws IOError when it is not a regular file (checked
// before opening, so a FIFO never blocks), cannot be read, or is larger than
// max_bytes (checked before allocating).
std::string read_file(const std::filesystem::path& path, std::uint64_t max_bytes = kMaxFileBytes);

// True for data that starts like a JPEG / a PNG.
bool looks_like_jpeg(std::string_view bytes);
bool looks_like_png(std::string_view bytes);

// Decodes JPEG or PNG (told apart by their signatures) to 3-channel RGB
// (always exactly 3: gray is expanded, alpha and transparency dropped).
// Throws FormatError for anything else, corrupt data or a header that claims
// more pixels than the data can code (JpegDecodeOptions, PngDecodeOptions),
// ValueError when the image has more than max_pixels pixels.
Image decode_image(std::string_view bytes, std::string_view source = "image data",
                   std::int64_t max_pixels = kMaxImagePixels);
void decode_image_into(std::string_view bytes, Image& out, std::string_view source = "image data",
                       std::int64_t max_pixels = kMaxImagePixels);
// read_file + decode_image.
Image read_image(const std::filesystem::path& path, std::int64_t max_pixels = kMaxImagePixels);

}  // namespace petal::data
