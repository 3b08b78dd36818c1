#include "data/jpeg.hpp"

#include <turbojpeg.h>

#include <memory>

namespace petal::data {
namespace {

struct TjHandleDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using TjHandle = std::unique_ptr<void, TjHandleDeleter>;

// Creating a TurboJPEG handle allocates libjpeg's state; each thread keeps one
// per direction so decoding a dataset does not pay that per image. After an
// error libjpeg's state can be left half-way (a later header read then fails
// with "Unsupported marker"), so a failed handle is thrown away.
TjHandle& decompressor_slot() {
  thread_local TjHandle handle;
  return handle;
}

tjhandle thread_decompressor() {
  TjHandle& slot = decompressor_slot();
  if (!slot) slot.reset(tjInitDecompress());
  PETAL_CHECK(slot != nullptr, Error, "JPEG: tjInitDecompress failed: ", tjGetErrorStr2(nullptr));
  return slot.get();
}

tjhandle thread_compressor() {
  thread_local TjHandle handle(tjInitCompress());
  PETAL_CHECK(handle != nullptr, Error, "JPEG: tjInitCompress failed: ", tjGetErrorStr2(nullptr));
  return handle.get();
}

// Builds the error from the handle's message, then discards the handle.
[[noreturn]] void fail_decode(tjhandle handle, const std::string& context) {
  const std::string message = str_cat(context, tjGetErrorStr2(handle));
  decompressor_slot().reset();
  throw FormatError(message);
}

int channels_of_colorspace(int colorspace) {
  switch (colorspace) {
    case TJCS_GRAY: return 1;
    case TJCS_CMYK:
    case TJCS_YCCK: return 4;
    default: return 3;
  }
}

const unsigned char* as_uchar(std::string_view bytes) { return reinterpret_cast<const unsigned char*>(bytes.data()); }

JpegInfo read_info(tjhandle handle, std::string_view bytes, std::string_view source) {
  if (bytes.size() < 4 || static_cast<unsigned char>(bytes[0]) != 0xFF || static_cast<unsigned char>(bytes[1]) != 0xD8)
    throw FormatError(str_cat(source, ": not a JPEG (", bytes.size(), " bytes, no FF D8 start marker)"));
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle, as_uchar(bytes), static_cast<unsigned long>(bytes.size()), &width, &height,
                          &subsampling, &colorspace) != 0)
    fail_decode(handle, str_cat(source, ": bad JPEG header: "));
  if (width <= 0 || height <= 0)
    throw FormatError(str_cat(source, ": JPEG header gives size ", width, "x", height));
  return {width, height, channels_of_colorspace(colorspace)};
}

}  // namespace

JpegInfo read_jpeg_info(std::string_view bytes, std::string_view source) {
  return read_info(thread_decompressor(), bytes, source);
}

void decode_jpeg_into(std::string_view bytes, Image& out, const JpegDecodeOptions& options, std::string_view source) {
  tjhandle handle = thread_decompressor();
  const JpegInfo info = read_info(handle, bytes, source);
  const std::int64_t pixels = static_cast<std::int64_t>(info.width) * info.height;
  if (pixels > options.max_pixels)
    throw ValueError(str_cat(source, ": JPEG of ", info.width, "x", info.height, " = ", pixels,
                             " pixels exceeds the limit of ", options.max_pixels));
  // ceil(pixels / per_byte) > size, i.e. pixels > per_byte * size without overflow.
  if (options.max_pixels_per_byte > 0 &&
      (pixels + options.max_pixels_per_byte - 1) / options.max_pixels_per_byte >
          static_cast<std::int64_t>(bytes.size()))
    throw FormatError(str_cat(source, ": JPEG header claims ", info.width, "x", info.height, " = ", pixels,
                              " pixels, more than its ", bytes.size(), " bytes can code (at most ",
                              options.max_pixels_per_byte, " pixels per byte)"));
  if (info.channels == 4)
    throw FormatError(str_cat(source, ": CMYK JPEGs are not supported (", info.width, "x", info.height, ")"));
  out.reset(info.height, info.width, 3);
  int flags = options.fast_dct ? TJFLAG_FASTDCT : 0;
  if (!options.accept_warnings) flags |= TJFLAG_STOPONWARNING;
  if (tjDecompress2(handle, as_uchar(bytes), static_cast<unsigned long>(bytes.size()), out.data(), info.width,
                    info.width * 3, info.height, TJPF_RGB, flags) != 0) {
    const bool warning = tjGetErrorCode(handle) == TJERR_WARNING;
    if (!(warning && options.accept_warnings))
      fail_decode(handle, str_cat(source, ": cannot decode ", info.width, "x", info.height, " JPEG (", bytes.size(),
                                  " bytes): "));
  }
}

Image decode_jpeg(std::string_view bytes, const JpegDecodeOptions& options, std::string_view source) {
  Image image;
  decode_jpeg_into(bytes, image, options, source);
  return image;
}

std::string encode_jpeg(const Image& image, const JpegEncodeOptions& options) {
  PETAL_CHECK(image.channels == 1 || image.channels == 3, ValueError, "encode_jpeg: ", image.shape_str(),
              " image; JPEG takes 1 or 3 channels");
  PETAL_CHECK(image.width > 0 && image.height > 0, ValueError, "encode_jpeg: empty image ", image.shape_str());
  PETAL_CHECK(options.quality >= 1 && options.quality <= 100, ValueError, "encode_jpeg: quality ", options.quality,
              " outside 1..100");
  tjhandle handle = thread_compressor();
  const int pixel_format = image.channels == 1 ? TJPF_GRAY : TJPF_RGB;
  const int subsampling = image.channels == 1 ? TJSAMP_GRAY : options.chroma_subsampling ? TJSAMP_420 : TJSAMP_444;
  unsigned char* jpeg = nullptr;
  unsigned long jpeg_size = 0;
  const int rc = tjCompress2(handle, image.data(), image.width, image.width * image.channels, image.height,
                             pixel_format, &jpeg, &jpeg_size, subsampling, options.quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(jpeg, [](unsigned char* p) { tjFree(p); });
  if (rc != 0) throw Error(str_cat("encode_jpeg: ", image.shape_str(), " image: ", tjGetErrorStr2(handle)));
  return std::string(reinterpret_cast<const char*>(jpeg), jpeg_size);
}

}  // namespace petal::data
