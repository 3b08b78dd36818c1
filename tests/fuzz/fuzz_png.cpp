// PNG decoding (libpng through data/png.cpp): the input is a file.
// Invariants, for every channel request (0 = as stored, 1, 3, 4):
//  - decode_png throws petal::Error or returns exactly the channels asked for
//    (1..4 for 0), width * height * channels bytes, the same size for every
//    request, at most max_pixels pixels;
//  - the requests agree: 4 channels begin with the 3 of an RGB request; a
//    request equal to the stored channel count gives the stored pixels; gray
//    expanded to RGB repeats the gray value;
//  - encode_png of the decoded image decodes to the same image.
// The custom mutator (below) keeps chunk CRCs valid and sometimes mutates the
// inflated IDAT stream, so mutations reach the filters and pixels instead of
// dying at the first CRC or zlib check.
#include <zlib.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "data/png.hpp"
#include "fuzz_common.hpp"

using namespace petal;
using namespace petal::data;

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace {

bool decode(std::string_view bytes, int channels, Image& out) {
  PngDecodeOptions options;
  options.channels = channels;
  return fuzz::expect_ok_or_error("decode_png", [&] { out = decode_png(bytes, options); });
}

void check_shape(const Image& image, int asked) {
  if (asked == 0) FUZZ_CHECK(image.channels >= 1 && image.channels <= 4, image.channels, " channels");
  else FUZZ_CHECK(image.channels == asked, image.shape_str(), " decoded, ", asked, " channels asked for");
  FUZZ_CHECK(image.width > 0 && image.height > 0, image.shape_str());
  FUZZ_CHECK(static_cast<std::int64_t>(image.width) * image.height <= PngDecodeOptions{}.max_pixels);
  FUZZ_CHECK(image.size() == static_cast<std::size_t>(image.width) * image.height * image.channels, image.size(),
             " bytes for ", image.shape_str());
}

// Channels [0, n) of every pixel.
std::vector<std::uint8_t> leading_channels(const Image& image, int n) {
  std::vector<std::uint8_t> out;
  out.reserve(image.size() / image.channels * n);
  for (std::size_t i = 0; i < image.size(); i += image.channels)
    out.insert(out.end(), image.pixels.begin() + i, image.pixels.begin() + i + n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::array<Image, 5> images;  // by channels asked
  std::array<bool, 5> ok{};
  for (int c : {0, 1, 3, 4}) {
    ok[c] = decode(bytes, c, images[c]);
    if (ok[c]) check_shape(images[c], c);
  }
  if (!ok[0]) return 0;
  const Image& stored = images[0];
  for (int c : {1, 3, 4}) {
    // libpng's transformations do not fail where the plain decode did not.
    FUZZ_CHECK(ok[c], "decodes with 0 channels asked for (", stored.shape_str(), ") but not with ", c);
    FUZZ_CHECK(images[c].width == stored.width && images[c].height == stored.height);
    if (c == stored.channels) FUZZ_CHECK(images[c] == stored, c, "-channel request differs from the stored pixels");
  }
  FUZZ_CHECK(leading_channels(images[4], 3) == images[3].pixels, "RGBA's RGB differs from RGB (", stored.shape_str(), ")");
  if (stored.channels <= 2) {  // gray: RGB repeats it, 1 channel gives it
    const std::vector<std::uint8_t> gray = leading_channels(stored, 1);
    FUZZ_CHECK(images[1].pixels == gray, "gray image: 1-channel request differs from the gray channel");
    for (std::size_t i = 0; i < gray.size(); ++i)
      FUZZ_CHECK(images[3].pixels[3 * i] == gray[i] && images[3].pixels[3 * i + 1] == gray[i] &&
                 images[3].pixels[3 * i + 2] == gray[i], "gray expanded to RGB differs at pixel ", i);
  }
  if (stored.channels == 2)  // gray + alpha: RGBA keeps the alpha
    for (std::size_t i = 0; i < stored.size() / 2; ++i)
      FUZZ_CHECK(images[4].pixels[4 * i + 3] == stored.pixels[2 * i + 1], "alpha differs at pixel ", i);

  if (static_cast<std::int64_t>(stored.width) * stored.height <= 256 * 256) {
    for (int c : {0, 1, 3, 4}) {
      Image again;
      fuzz::expect_ok("encode_png -> decode_png", [&] {
        PngDecodeOptions options;
        options.channels = c;
        again = decode_png(encode_png(images[c], static_cast<int>(size % 10)), options);
      });
      FUZZ_CHECK(again == images[c], "encode -> decode changed a ", images[c].shape_str(), " image");
    }
  }
  return 0;
}

// ---- custom mutator ----

namespace {

constexpr std::size_t kSignature = 8;

std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void store_be32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

struct Chunk {
  std::size_t offset;  // of the length field
  std::uint32_t length;
  std::uint32_t type;
};

// The complete chunks after the signature (a partial last one is left alone).
std::vector<Chunk> chunks_of(const std::uint8_t* data, std::size_t size) {
  std::vector<Chunk> chunks;
  std::size_t pos = kSignature;
  while (size >= 12 && pos <= size - 12) {
    const std::uint32_t length = load_be32(data + pos);
    if (length > size - pos - 12) break;
    chunks.push_back({pos, length, load_be32(data + pos + 4)});
    pos += 12 + length;
  }
  return chunks;
}

void fix_crcs(std::uint8_t* data, std::size_t size) {
  for (const Chunk& c : chunks_of(data, size)) {
    const uLong crc = crc32(crc32(0, nullptr, 0), data + c.offset + 4, 4 + c.length);
    store_be32(data + c.offset + 8 + c.length, static_cast<std::uint32_t>(crc));
  }
}

constexpr std::uint32_t kIDAT = 0x49444154;


// Inflates the concatenated IDAT data, mutates the raw scanlines, deflates
// them into one IDAT chunk in place of the old ones. Returns the new size, or
// 0 when the image has no inflatable IDAT data or the result does not fit.
std::size_t mutate_pixels(std::uint8_t* data, std::size_t size, std::size_t max_size) {
  const std::vector<Chunk> chunks = chunks_of(data, size);
  std::string compressed;
  std::size_t first = 0, last_end = 0;
  for (const Chunk& c : chunks) {
    if (c.type != kIDAT) continue;
    if (compressed.empty() && first == 0) first = c.offset;
    compressed.append(reinterpret_cast<const char*>(data + c.offset + 8), c.length);
    last_end = c.offset + 12 + c.length;
  }
  if (first == 0 || compressed.empty()) return 0;
  std::vector<std::uint8_t> raw(1 << 16);
  uLongf raw_size = raw.size();
  // Partial output is fine: mutate what inflated.
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return 0;
  zs.next_in = reinterpret_cast<Bytef*>(compressed.data());
  zs.avail_in = static_cast<uInt>(compressed.size());
  zs.next_out = raw.data();
  zs.avail_out = static_cast<uInt>(raw.size());
  inflate(&zs, Z_FINISH);
  raw_size = zs.total_out;
  inflateEnd(&zs);
  if (raw_size == 0) return 0;
  const std::size_t mutated = LLVMFuzzerMutate(raw.data(), raw_size, raw.size());
  std::vector<std::uint8_t> packed(compressBound(mutated));
  uLongf packed_size = packed.size();
  if (compress2(packed.data(), &packed_size, raw.data(), mutated, 6) != Z_OK) return 0;
  const std::size_t new_size = first + 12 + packed_size + (size - last_end);
  if (new_size > max_size) return 0;
  // Assemble: [0, first) + IDAT + everything after the last IDAT (other
  // chunks between IDATs are dropped).
  std::vector<std::uint8_t> out(data, data + first);
  out.resize(first + 12 + packed_size);
  store_be32(out.data() + first, static_cast<std::uint32_t>(packed_size));
  store_be32(out.data() + first + 4, kIDAT);
  std::memcpy(out.data() + first + 8, packed.data(), packed_size);
  out.insert(out.end(), data + last_end, data + size);
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

}  // namespace

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  std::size_t new_size = 0;
  if (seed % 2 == 0 && size > kSignature) new_size = mutate_pixels(data, size, max_size);
  if (new_size == 0) new_size = LLVMFuzzerMutate(data, size, max_size);
  // Keep the signature most of the time: without it nothing gets past the first check.
  if (seed % 16 != 0 && new_size >= kSignature) std::memcpy(data, "\x89PNG\r\n\x1a\n", kSignature);
  if (seed % 8 != 0) fix_crcs(data, new_size);
  return new_size;
}
