// JPEG decoding (libjpeg-turbo through data/jpeg.cpp): the input is a file.
// Invariants:
//  - read_jpeg_info and decode_jpeg throw petal::Error or succeed;
//  - a decoded image has 3 channels, the header's size, and
//    width * height * 3 bytes; a CMYK header never decodes;
//  - decode_jpeg_into into a reused buffer gives the same pixels, and so does
//    decoding with warnings accepted (when strict decoding succeeded);
//  - re-encoding a decoded image (small ones) gives a JPEG that decodes
//    strictly to the same size.
#include <string>

#include "data/image_io.hpp"
#include "data/jpeg.hpp"
#include "fuzz_common.hpp"

using namespace petal;
using namespace petal::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  JpegInfo info;
  const bool header_ok = fuzz::expect_ok_or_error("read_jpeg_info", [&] { info = read_jpeg_info(bytes); });
  if (header_ok) FUZZ_CHECK(info.width > 0 && info.height > 0 && (info.channels == 1 || info.channels == 3 || info.channels == 4));

  Image image;
  const bool ok = fuzz::expect_ok_or_error("decode_jpeg", [&] { image = decode_jpeg(bytes); });
  // Lenient decoding (truncated scans allowed) sees every image strict decoding does.
  Image lenient;
  JpegDecodeOptions accept;
  accept.accept_warnings = true;
  const bool lenient_ok = fuzz::expect_ok_or_error("decode_jpeg(accept_warnings)", [&] { lenient = decode_jpeg(bytes, accept); });
  if (lenient_ok) {
    FUZZ_CHECK(header_ok && lenient.channels == 3 && lenient.width == info.width && lenient.height == info.height);
    FUZZ_CHECK(lenient.size() == static_cast<std::size_t>(lenient.width) * lenient.height * 3);
  }
  if (!ok) return 0;
  FUZZ_CHECK(header_ok, "decode_jpeg succeeded where read_jpeg_info failed");
  FUZZ_CHECK(info.channels != 4, "a CMYK JPEG decoded");
  FUZZ_CHECK(image.channels == 3, image.channels, " channels decoded, 3 asked for");
  FUZZ_CHECK(image.width == info.width && image.height == info.height, image.shape_str(), " vs header ", info.width,
             "x", info.height);
  FUZZ_CHECK(image.size() == static_cast<std::size_t>(image.width) * image.height * 3, image.size(), " bytes for ",
             image.shape_str());
  FUZZ_CHECK(lenient_ok && lenient == image, "accepting warnings changed a cleanly decoded image");

  // A buffer reused across inputs (as the dataset workers do).
  static Image reused;
  fuzz::expect_ok("decode_jpeg_into", [&] { decode_jpeg_into(bytes, reused); });
  FUZZ_CHECK(reused == image, "decode_jpeg_into a reused buffer differs from decode_jpeg");

  // decode_image dispatches on the signature (FF D8 FF) to the same decoder.
  if (looks_like_jpeg(bytes)) {
    Image via_image;
    fuzz::expect_ok("decode_image", [&] { via_image = decode_image(bytes); });
    FUZZ_CHECK(via_image == image);
  }

  if (static_cast<std::int64_t>(image.width) * image.height <= 128 * 128) {
    JpegEncodeOptions options;
    options.quality = 1 + static_cast<int>(size % 100);
    options.chroma_subsampling = (size & 1) != 0;
    Image again;
    fuzz::expect_ok("encode_jpeg -> decode_jpeg", [&] { again = decode_jpeg(encode_jpeg(image, options)); });
    FUZZ_CHECK(again.width == image.width && again.height == image.height && again.channels == 3);
  }
  return 0;
}
