// Reading whole files and decoding images of either supported format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "data/image.hpp"

namespace petal::data {

// The whole file. Throws IOError when it cannot be read or is larger than
// max_bytes (checked before allocating).
std::string read_file(const std::filesystem::path& path, std::uint64_t max_bytes = std::uint64_t{1} << 30);

// True for data that starts like a JPEG / a PNG.
bool looks_like_jpeg(std::string_view bytes);
bool looks_like_png(std::string_view bytes);

// Decodes JPEG or PNG (told apart by their signatures) to 3-channel RGB.
// Throws FormatError for anything else or corrupt data, ValueError when the
// image has more than max_pixels pixels.
Image decode_image(std::string_view bytes, std::string_view source = "image data",
                   std::int64_t max_pixels = std::int64_t{64} << 20);
void decode_image_into(std::string_view bytes, Image& out, std::string_view source = "image data",
                       std::int64_t max_pixels = std::int64_t{64} << 20);
// read_file + decode_image.
Image read_image(const std::filesystem::path& path, std::int64_t max_pixels = std::int64_t{64} << 20);

}  // namespace petal::data
