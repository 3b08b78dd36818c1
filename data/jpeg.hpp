// JPEG decoding and encoding through libjpeg-turbo's TurboJPEG API (2.1.x:
// tjDecompressHeader3 / tjDecompress2 / tjCompress2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "data/image.hpp"

namespace petal::data {

// Caps on what a JPEG may cost (docs/limits.md), checked after the header and
// before any pixel memory is allocated (by us or by libjpeg).
// The most pixels decoded by default: 64 Mi (192 MiB as RGB).
inline constexpr std::int64_t kJpegMaxPixels = std::int64_t{64} << 20;
// A Huffman-coded JPEG spends at least 1 bit on each 8x8 block of its
// full-resolution component (the DC difference's code; sequential scans add
// an end-of-block code), so each byte of the file covers at most 8 x 64 = 512
// pixels. Real photos stay far below (a flat 4:2:0 image with optimised tables
// reaches about 340); a header that claims more is refused, since libjpeg
// would otherwise allocate the claimed size and pad the missing data with
// gray. Arithmetic-coded files can legitimately exceed it: raise or disable
// (0) max_pixels_per_byte for them.
inline constexpr std::int64_t kJpegMaxPixelsPerByte = 512;

struct JpegDecodeOptions {
  // Images with more pixels than this are refused after reading the header,
  // before any pixel memory is allocated.
  std::int64_t max_pixels = kJpegMaxPixels;
  // Images with more pixels than this many per byte of input are refused
  // as well (0: no such check).
  std::int64_t max_pixels_per_byte = kJpegMaxPixelsPerByte;
  // libjpeg-turbo's faster, slightly less accurate integer DCT.
  bool fast_dct = false;
  // Corrupt-but-decodable data (libjpeg "warnings", e.g. a truncated scan) is
  // an error unless this is set.
  bool accept_warnings = false;
};

struct JpegInfo {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 for grayscale, 3 for colour, 4 for CMYK
};

// Reads the header only. `source` names the data in error messages
// ("flowers00-230.tfrec record 7"). Throws FormatError on a bad header.
JpegInfo read_jpeg_info(std::string_view bytes, std::string_view source = "JPEG data");

// Decodes to 3-channel RGB (grayscale is expanded). Throws FormatError on
// corrupt data or a header claiming more pixels than the data can hold,
// ValueError when the image is over options.max_pixels.
Image decode_jpeg(std::string_view bytes, const JpegDecodeOptions& options = {},
                  std::string_view source = "JPEG data");
// The same, decoding into `out` and reusing its buffer.
void decode_jpeg_into(std::string_view bytes, Image& out, const JpegDecodeOptions& options = {},
                      std::string_view source = "JPEG data");

struct JpegEncodeOptions {
  int quality = 95;              // 1..100
  bool chroma_subsampling = false;  // false: 4:4:4, true: 4:2:0
};

// Encodes a 1- or 3-channel image.
std::string encode_jpeg(const Image& image, const JpegEncodeOptions& options = {});

}  // namespace petal::data
