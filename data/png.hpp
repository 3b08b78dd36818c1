// PNG decoding and encoding through libpng. libpng reports errors by
// longjmp; they come out of these functions as petal::FormatError/IOError.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "data/image.hpp"

namespace petal::data {

// Caps on what a PNG may cost (docs/limits.md). Both are checked after the
// header and before any pixel memory is allocated.
// The most pixels decoded by default: 64 Mi (192 MiB as RGB).
inline constexpr std::int64_t kPngMaxPixels = std::int64_t{64} << 20;
// Deflate never expands more than 1032-fold (258-byte matches in 2 bits), so
// a header claiming more stored row bytes than 1032 x the file's size is a lie.
inline constexpr std::uint64_t kPngMaxInflateRatio = 1032;

struct PngDecodeOptions {
  // 0 keeps the file's channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA;
  // palettes become RGB/RGBA, gray or RGB with a tRNS chunk gain alpha);
  // 1, 3 or 4 converts (transparency is dropped for 1 and 3, never composited).
  // 16-bit samples become 8-bit. The result has exactly these channels.
  int channels = 3;
  std::int64_t max_pixels = kPngMaxPixels;  // refused after the header
};

Image decode_png(std::string_view bytes, const PngDecodeOptions& options = {}, std::string_view source = "PNG data");

// Encodes 8-bit pixels (channels 1, 2, 3 or 4; rows of width * channels bytes).
std::string encode_png(int width, int height, int channels, const std::uint8_t* pixels, int compression_level = 6);
std::string encode_png(const Image& image, int compression_level = 6);

// Writes a PNG file (plots, debugging dumps). Throws IOError on failure.
void write_png(const std::filesystem::path& path, int width, int height, int channels, const std::uint8_t* pixels);
void write_png(const std::filesystem::path& path, const Image& image);

}  // namespace petal::data
