// Hostile and unusual images (issue 17): every decoder returns exactly the
// channels asked for, and headers claiming more pixels than their bytes can
// code are refused before any pixel memory is allocated.
#include <doctest/doctest.h>
#include <png.h>
#include <sys/stat.h>

#include <csetjmp>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_io.hpp"
#include "data/jpeg.hpp"
#include "data/png.hpp"
#include "temp_dir.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::data;

namespace {

struct PngSpec {
  const char* name;
  int color_type;
  int bit_depth;
  bool trns;
  int file_channels;  // samples per pixel in the file (1 for palettes)
  int native_channels;  // what channels = 0 gives
};

void append_to_string(png_structp png, png_bytep data, png_size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), length);
}

// Only plain data lives in this frame, so libpng's longjmp skips no destructor.
bool write_with_libpng(png_structp png, png_infop info, const PngSpec& spec, int max_sample, std::string* out,
                       png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, append_to_string, nullptr);
  png_set_IHDR(png, info, 5, 3, spec.bit_depth, spec.color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_color palette[2] = {{200, 10, 20}, {30, 220, 40}};
  if (spec.color_type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, 2);
  if (spec.trns) {
    if (spec.color_type == PNG_COLOR_TYPE_PALETTE) {
      png_byte alpha[2] = {255, 0};  // index 1 fully transparent
      png_set_tRNS(png, info, alpha, 2, nullptr);
    } else {
      png_color_16 transparent{};
      transparent.gray = transparent.red = transparent.green = transparent.blue = static_cast<png_uint_16>(max_sample);
      png_set_tRNS(png, info, nullptr, 0, &transparent);
    }
  }
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

// A 5x3 PNG in exactly the requested format, written with libpng directly so
// no petal code shapes the input. Pixel (x, y) takes sample value (x + y) % 2
// scaled to the bit depth, palette index (x + y) % 2 for palettes.
std::string make_png(const PngSpec& spec) {
  constexpr int kWidth = 5, kHeight = 3;
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  REQUIRE(png != nullptr);
  png_infop info = png_create_info_struct(png);
  const int bytes_per_sample = spec.bit_depth == 16 ? 2 : 1;
  const int row_bytes = kWidth * spec.file_channels * bytes_per_sample;
  std::vector<std::vector<png_byte>> rows(kHeight, std::vector<png_byte>(row_bytes + 1, 0));
  std::vector<png_bytep> row_pointers;
  for (auto& r : rows) row_pointers.push_back(r.data());
  const int max_sample = spec.color_type == PNG_COLOR_TYPE_PALETTE ? 1 : (1 << spec.bit_depth) - 1;
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      const int value = ((x + y) % 2) * max_sample;
      for (int c = 0; c < spec.file_channels; ++c) {
        const int i = x * spec.file_channels + c;
        if (spec.bit_depth == 16) {
          rows[y][2 * i] = static_cast<png_byte>(value >> 8);
          rows[y][2 * i + 1] = static_cast<png_byte>(value & 0xff);
        } else if (spec.bit_depth == 8) {
          rows[y][i] = static_cast<png_byte>(value);
        } else {  // packed samples, most significant first
          const int per_byte = 8 / spec.bit_depth;
          rows[y][i / per_byte] |= static_cast<png_byte>(value << (8 - spec.bit_depth * (i % per_byte + 1)));
        }
      }
    }
  }
  const bool written = write_with_libpng(png, info, spec, max_sample, &out, row_pointers.data());
  png_destroy_write_struct(&png, &info);
  REQUIRE_MESSAGE(written, "libpng failed to write the test PNG " << spec.name);
  return out;
}

const PngSpec kPngSpecs[] = {
    {"palette + tRNS", PNG_COLOR_TYPE_PALETTE, 8, true, 1, 4},
    {"2-bit palette + tRNS", PNG_COLOR_TYPE_PALETTE, 2, true, 1, 4},
    {"palette", PNG_COLOR_TYPE_PALETTE, 8, false, 1, 3},
    {"gray", PNG_COLOR_TYPE_GRAY, 8, false, 1, 1},
    {"gray + tRNS", PNG_COLOR_TYPE_GRAY, 8, true, 1, 2},
    {"1-bit gray + tRNS", PNG_COLOR_TYPE_GRAY, 1, true, 1, 2},
    {"16-bit gray + tRNS", PNG_COLOR_TYPE_GRAY, 16, true, 1, 2},
    {"gray + alpha", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, 2, 2},
    {"16-bit gray + alpha", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, 2, 2},
    {"RGB", PNG_COLOR_TYPE_RGB, 8, false, 3, 3},
    {"RGB + tRNS", PNG_COLOR_TYPE_RGB, 8, true, 3, 4},
    {"16-bit RGB", PNG_COLOR_TYPE_RGB, 16, false, 3, 3},
    {"16-bit RGB + tRNS", PNG_COLOR_TYPE_RGB, 16, true, 3, 4},
    {"RGBA", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, 4, 4},
    {"16-bit RGBA", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, 4, 4},
};

std::uint32_t crc32_of(const std::string& bytes, std::size_t begin, std::size_t end) {
  std::uint32_t crc = 0xffffffffu;
  for (std::size_t i = begin; i < end; ++i) {
    crc ^= static_cast<unsigned char>(bytes[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(std::string& bytes, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

// A valid small PNG whose IHDR (CRC fixed up) claims width x height.
std::string png_claiming(std::uint32_t width, std::uint32_t height) {
  Image small(16, 16, 3);
  std::string png = encode_png(small);
  // signature (8) | length (4) | "IHDR" (4) | width (4) | height (4) | ... | CRC
  REQUIRE(png.substr(12, 4) == "IHDR");
  put_be32(png, 16, width);
  put_be32(png, 20, height);
  put_be32(png, 29, crc32_of(png, 12, 29));
  return png;
}

// A valid small JPEG whose SOF0 header claims width x height.
std::string jpeg_claiming(int width, int height) {
  Image small(16, 16, 3);
  std::string jpeg = encode_jpeg(small);
  const std::size_t sof = jpeg.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  // FF C0 | length (2) | precision (1) | height (2) | width (2)
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height & 0xff);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width & 0xff);
  return jpeg;
}

}  // namespace

TEST_CASE("PNG decoding returns exactly the channels asked for, in every colour type") {
  for (const PngSpec& spec : kPngSpecs) {
    CAPTURE(spec.name);
    const std::string png = make_png(spec);
    for (int wanted : {0, 1, 3, 4}) {
      CAPTURE(wanted);
      PngDecodeOptions options;
      options.channels = wanted;
      const Image image = decode_png(png, options);
      const int expected = wanted == 0 ? spec.native_channels : wanted;
      CHECK(image.channels == expected);
      CHECK(image.width == 5);
      CHECK(image.height == 3);
      CHECK(image.pixels.size() == std::size_t{5} * 3 * expected);
    }
    const Image via_image_io = decode_image(png, spec.name);
    CHECK(via_image_io.channels == 3);
    CHECK(via_image_io.pixels.size() == std::size_t{5} * 3 * 3);
  }
}

TEST_CASE("a palette PNG with tRNS keeps its colours when alpha is dropped") {
  const std::string png = make_png(kPngSpecs[0]);
  PngDecodeOptions rgb;
  rgb.channels = 3;
  const Image image = decode_png(png, rgb);
  REQUIRE(image.channels == 3);
  // (0, 0) is palette index 0, (1, 0) index 1 (the transparent one).
  CHECK(image.pixels[0] == 200);
  CHECK(image.pixels[1] == 10);
  CHECK(image.pixels[2] == 20);
  CHECK(image.pixels[3] == 30);
  CHECK(image.pixels[4] == 220);
  CHECK(image.pixels[5] == 40);
  PngDecodeOptions rgba;
  rgba.channels = 4;
  const Image with_alpha = decode_png(png, rgba);
  CHECK(with_alpha.pixels[3] == 255);
  CHECK(with_alpha.pixels[7] == 0);
}

TEST_CASE("a PNG header claiming more pixels than deflate can code is refused") {
  // 8000 x 8000 stays under the 64 Mi pixel cap, so only the ratio catches it.
  const std::string png = png_claiming(8000, 8000);
  const std::string message = test::thrown_message<FormatError>([&] { decode_png(png, {}, "lying.png"); });
  CHECK(message.find("lying.png") != std::string::npos);
  CHECK(message.find("8000x8000") != std::string::npos);
  CHECK(message.find("deflate") != std::string::npos);
  CHECK_THROWS_AS(decode_png(png_claiming(100000, 100000)), ValueError);  // over the pixel cap
}

TEST_CASE("a PNG chunk claiming more bytes than the file holds is refused before libpng allocates it") {
  Image small(4, 4, 3);
  std::string png = encode_png(small);
  // After the IHDR chunk (8 + 4 + 4 + 13 + 4 bytes): a tEXt chunk header
  // claiming 1.4 GB, as in tests/fuzz/crashers/png/text_chunk_1_4GB_claim
  // (libpng allocated the claim; ASan with max_allocation_size_mb shows it).
  std::string chunk = std::string(4, '\0') + "tEXtComment";
  put_be32(chunk, 0, 0x58000017u);
  png.insert(33, chunk);
  const std::string message = test::thrown_message<FormatError>([&] { decode_png(png, {}, "claims.png"); });
  CHECK(message.find("claims.png") != std::string::npos);
  CHECK(message.find("PNG chunk 'tEXt' at byte 33 claims 1476395031 bytes") != std::string::npos);
}

TEST_CASE("a JPEG header claiming more pixels than its bytes can code is refused before allocating") {
  const std::string jpeg = jpeg_claiming(8000, 8000);
  const JpegInfo info = read_jpeg_info(jpeg);
  CHECK(info.width == 8000);
  CHECK(info.height == 8000);
  Image out(2, 2, 3);
  const std::size_t capacity_before = out.pixels.capacity();
  const std::string message = test::thrown_message<FormatError>([&] { decode_jpeg_into(jpeg, out, {}, "lying.jpg"); });
  CHECK(message.find("lying.jpg") != std::string::npos);
  CHECK(message.find("8000x8000") != std::string::npos);
  CHECK(message.find("pixels per byte") != std::string::npos);
  CHECK(out.pixels.capacity() == capacity_before);  // nothing was allocated for the claim
  CHECK(out.width == 2);
  CHECK_THROWS_AS(decode_image(jpeg, "lying.jpg"), FormatError);
  // The same header, with the ratio check off, meets the pixel cap only.
  JpegDecodeOptions tiny_cap;
  tiny_cap.max_pixels_per_byte = 0;
  tiny_cap.max_pixels = 1000;
  CHECK_THROWS_AS(decode_jpeg(jpeg, tiny_cap), ValueError);
}

TEST_CASE("flat, highly compressible images stay under the JPEG and PNG ratios") {
  Image flat(1024, 1536, 3);
  for (auto& p : flat.pixels) p = 128;
  JpegEncodeOptions subsampled;
  subsampled.quality = 50;
  subsampled.chroma_subsampling = true;
  const std::string jpeg = encode_jpeg(flat, subsampled);
  CHECK(static_cast<std::int64_t>(jpeg.size()) * kJpegMaxPixelsPerByte > 1024 * 1536);
  CHECK(decode_jpeg(jpeg).width == 1536);
  const std::string png = encode_png(flat, 9);
  CHECK(decode_png(png).height == 1024);
}

TEST_CASE("read_file refuses directories and FIFOs without blocking") {
  testing::TempDir dir;
  CHECK_THROWS_AS(read_file(dir.path()), IOError);
  const auto fifo = dir / "pipe.png";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(test::thrown_message<IOError>([&] { read_image(fifo); }).find("not a regular file") != std::string::npos);
  CHECK_THROWS_AS(read_file(dir / "missing.png"), IOError);
}
