#include "data/png.hpp"

#include <png.h>

#include <csetjmp>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/atomic_file.hpp"

namespace petal::data {
namespace {

// libpng calls on_error and expects it not to return; we longjmp back to the
// setjmp in the function that drives libpng. Only plain data lives in those
// frames, so no C++ destructor is skipped.
struct PngErrorState {
  char message[256] = {};
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message ? message : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

struct MemoryInput {
  const unsigned char* data;
  std::size_t size;
  std::size_t pos;
};

void read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* in = static_cast<MemoryInput*>(png_get_io_ptr(png));
  if (length > in->size - in->pos) png_error(png, "unexpected end of PNG data");
  std::memcpy(out, in->data + in->pos, length);
  in->pos += length;
}

struct ReadRequest {
  MemoryInput input;
  int wanted_channels;
  std::int64_t max_pixels;
  // Outputs, filled by read_png_with_libpng.
  png_uint_32 width = 0, height = 0;
  int channels = 0;
  bool too_large = false;
  bool too_little_data = false;
  bool wrong_channels = false;
  std::vector<std::uint8_t>* pixels = nullptr;
  std::vector<png_bytep>* rows = nullptr;
};

// Drives libpng; returns false when libpng reported an error (or the image is
// too large, flagged in the request). Everything that needs destroying lives
// in the caller.
bool read_png_with_libpng(png_structp png, png_infop info, ReadRequest* req) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &req->input, read_from_memory);
  png_read_info(png, info);
  req->width = png_get_image_width(png, info);
  req->height = png_get_image_height(png, info);
  if (static_cast<std::int64_t>(req->width) * req->height > req->max_pixels) {
    req->too_large = true;
    return false;
  }
  // Deflate expands at most kPngMaxInflateRatio-fold, so the file's own rows
  // (filter bytes left out, which only makes the test lenient) must fit.
  const std::uint64_t stored_row_bytes = png_get_rowbytes(png, info);
  if (stored_row_bytes * req->height > kPngMaxInflateRatio * std::uint64_t{req->input.size}) {
    req->too_little_data = true;
    return false;
  }
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (bit_depth == 16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  const bool has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  const bool is_gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
  // png_set_palette_to_rgb also turns a palette's tRNS into an alpha channel,
  // so alpha can appear without the colour type's alpha bit.
  const bool gets_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || (color_type == PNG_COLOR_TYPE_PALETTE && has_trns);
  switch (req->wanted_channels) {
    case 1:
      if (!is_gray) png_set_rgb_to_gray_fixed(png, 1, -1, -1);
      if (gets_alpha) png_set_strip_alpha(png);
      break;
    case 3:
      if (is_gray) png_set_gray_to_rgb(png);
      if (gets_alpha) png_set_strip_alpha(png);
      break;
    case 4:
      if (is_gray) png_set_gray_to_rgb(png);
      if (has_trns) png_set_tRNS_to_alpha(png);
      else if ((color_type & PNG_COLOR_MASK_ALPHA) == 0) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
      break;
    default:
      if (has_trns) png_set_tRNS_to_alpha(png);
      break;
  }
  png_read_update_info(png, info);
  req->channels = png_get_channels(png, info);
  if (req->wanted_channels != 0 && req->channels != req->wanted_channels) {
    req->wrong_channels = true;
    return false;
  }
  const std::size_t row_bytes = png_get_rowbytes(png, info);
  if (row_bytes != static_cast<std::size_t>(req->width) * req->channels) png_error(png, "unexpected row size");
  req->pixels->resize(row_bytes * req->height);
  req->rows->resize(req->height);
  for (png_uint_32 y = 0; y < req->height; ++y) (*req->rows)[y] = req->pixels->data() + y * row_bytes;
  png_read_image(png, req->rows->data());
  png_read_end(png, nullptr);
  return true;
}

struct WriteRequest {
  int width, height, channels, level;
  const std::uint8_t* pixels;
  std::string* out;
  std::vector<png_bytep>* rows;
};

void write_to_string(png_structp png, png_bytep data, png_size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), length);
}
void flush_nothing(png_structp) {}

bool write_png_with_libpng(png_structp png, png_infop info, WriteRequest* req) {
  if (setjmp(png_jmpbuf(png))) return false;
  static constexpr int kColorTypes[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                        PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_write_fn(png, req->out, write_to_string, flush_nothing);
  png_set_compression_level(png, req->level);
  png_set_IHDR(png, info, req->width, req->height, 8, kColorTypes[req->channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const std::size_t row_bytes = static_cast<std::size_t>(req->width) * req->channels;
  for (int y = 0; y < req->height; ++y)
    (*req->rows)[y] = const_cast<png_bytep>(req->pixels + y * row_bytes);  // libpng's API is not const-correct
  png_write_image(png, req->rows->data());
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

namespace {

std::uint32_t load_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | u[3];
}

// libpng allocates the length a chunk claims before reading the chunk (a
// 132-byte file claiming a 1.4 GB tEXt chunk made it malloc 1.4 GB), so the
// chunk framing is walked first: every chunk up to IEND must fit in the input.
void check_chunk_lengths(std::string_view bytes, std::string_view source) {
  std::size_t pos = 8;  // after the signature
  while (pos < bytes.size()) {
    const std::size_t left = bytes.size() - pos;
    if (left < 12)
      throw FormatError(str_cat(source, ": PNG chunk at byte ", pos, " is truncated (", left,
                                " bytes left, a chunk takes at least 12)"));
    const std::uint32_t length = load_be32(bytes.data() + pos);
    const std::string_view type = bytes.substr(pos + 4, 4);
    if (length > left - 12) {
      std::string printable;
      for (char c : type) printable += (c >= 0x20 && c < 0x7f) ? c : '?';
      throw FormatError(str_cat(source, ": PNG chunk '", printable, "' at byte ", pos, " claims ", length,
                                " bytes, only ", left - 12, " are left"));
    }
    pos += 12 + std::size_t{length};
    if (type == "IEND") return;
  }
}

}  // namespace

Image decode_png(std::string_view bytes, const PngDecodeOptions& options, std::string_view source) {
  PETAL_CHECK(options.channels == 0 || options.channels == 1 || options.channels == 3 || options.channels == 4,
              ValueError, "decode_png: channels must be 0, 1, 3 or 4, got ", options.channels);
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
    throw FormatError(str_cat(source, ": not a PNG (", bytes.size(), " bytes, no PNG signature)"));
  check_chunk_lengths(bytes, source);
  PngErrorState errors;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &errors, on_png_error, on_png_warning);
  PETAL_CHECK(png != nullptr, Error, "decode_png: png_create_read_struct failed");
  // Decompressed ancillary chunks (text, ICC profiles: petal uses neither)
  // larger than the input are skipped with a warning instead of allocated.
  png_set_chunk_malloc_max(png, bytes.size());
  png_infop info = png_create_info_struct(png);
  Image image;
  std::vector<png_bytep> rows;
  ReadRequest req{{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0},
                  options.channels, options.max_pixels};
  req.pixels = &image.pixels;
  req.rows = &rows;
  bool ok = false;
  try {
    ok = info != nullptr && read_png_with_libpng(png, info, &req);
  } catch (...) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw;
  }
  png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  if (req.too_large)
    throw ValueError(str_cat(source, ": PNG of ", req.width, "x", req.height, " pixels exceeds the limit of ",
                             options.max_pixels));
  if (req.too_little_data)
    throw FormatError(str_cat(source, ": PNG header claims ", req.width, "x", req.height, " pixels, more than ",
                              bytes.size(), " bytes can hold (deflate expands at most ", kPngMaxInflateRatio,
                              "-fold)"));
  if (req.wrong_channels)
    throw FormatError(str_cat(source, ": PNG decodes to ", req.channels, " channels, ", options.channels,
                              " were asked for"));
  if (!ok) throw FormatError(str_cat(source, ": cannot decode PNG: ", errors.message));
  image.height = static_cast<int>(req.height);
  image.width = static_cast<int>(req.width);
  image.channels = req.channels;
  return image;
}

std::string encode_png(int width, int height, int channels, const std::uint8_t* pixels, int compression_level) {
  PETAL_CHECK(channels >= 1 && channels <= 4, ValueError, "encode_png: ", channels, " channels; PNG takes 1 to 4");
  PETAL_CHECK(width > 0 && height > 0, ValueError, "encode_png: empty image ", width, "x", height);
  PETAL_CHECK(compression_level >= 0 && compression_level <= 9, ValueError, "encode_png: compression level ",
              compression_level, " outside 0..9");
  PngErrorState errors;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errors, on_png_error, on_png_warning);
  PETAL_CHECK(png != nullptr, Error, "encode_png: png_create_write_struct failed");
  png_infop info = png_create_info_struct(png);
  std::string out;
  std::vector<png_bytep> rows(static_cast<std::size_t>(height));
  WriteRequest req{width, height, channels, compression_level, pixels, &out, &rows};
  bool ok = false;
  try {
    ok = info != nullptr && write_png_with_libpng(png, info, &req);
  } catch (...) {
    png_destroy_write_struct(&png, &info);
    throw;
  }
  png_destroy_write_struct(&png, info ? &info : nullptr);
  if (!ok) throw Error(str_cat("encode_png: ", width, "x", height, "x", channels, " image: ", errors.message));
  return out;
}

std::string encode_png(const Image& image, int compression_level) {
  return encode_png(image.width, image.height, image.channels, image.data(), compression_level);
}

void write_png(const std::filesystem::path& path, int width, int height, int channels, const std::uint8_t* pixels) {
  // Encoded in memory first, so a kill or an encoding error never leaves a
  // truncated PNG under the target's name.
  write_file_atomic(path, encode_png(width, height, channels, pixels));
}

void write_png(const std::filesystem::path& path, const Image& image) {
  write_png(path, image.width, image.height, image.channels, image.data());
}

}  // namespace petal::data
