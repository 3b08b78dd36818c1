#include "data/sample_map.hpp"

#include "data/example.hpp"
#include "data/image_io.hpp"
#include "data/image_ops.hpp"
#include "data/jpeg.hpp"

namespace petal::data {
namespace {

// Example errors speak of byte offsets in the payload; say which record.
template <class ErrorType>
[[noreturn]] void rethrow_with_origin(const ErrorType& e, const RawRecord& record) {
  throw ErrorType(str_cat(record.origin, ": ", e.what()));
}

void decode_record_image(const RawRecord& record, const Preprocess& p, Sample& out, Image& decoded) {
  std::string_view encoded;
  Example example;
  if (record.kind == RecordKind::Example) {
    try {
      example = decode_example(record.bytes);
      encoded = example.bytes(p.image_key);
      out.label = example.int64(p.label_key);
    } catch (const DTypeError& e) {
      rethrow_with_origin(e, record);
    } catch (const FormatError& e) {
      rethrow_with_origin(e, record);
    }
  } else {
    encoded = record.bytes;
    out.label = record.label;
  }
  if (looks_like_jpeg(encoded)) {
    JpegDecodeOptions options;
    options.max_pixels = p.max_pixels;
    options.fast_dct = p.fast_dct;
    decode_jpeg_into(encoded, decoded, options, record.origin);
  } else {
    decode_image_into(encoded, decoded, record.origin, p.max_pixels);
  }
}

}  // namespace

MapFn make_map(const Preprocess& preprocess) {
  PETAL_CHECK(preprocess.height >= 0 && preprocess.width >= 0 && (preprocess.height == 0) == (preprocess.width == 0),
              ValueError, "Preprocess: height and width must both be positive or both 0, got ", preprocess.height, "x",
              preprocess.width);
  PETAL_CHECK(preprocess.random_crop_height >= 0 && preprocess.random_crop_width >= 0 &&
                  (preprocess.random_crop_height == 0) == (preprocess.random_crop_width == 0),
              ValueError, "Preprocess: random crop ", preprocess.random_crop_height, "x", preprocess.random_crop_width,
              " must be both positive or both 0");
  PETAL_CHECK(preprocess.brightness_max_delta >= 0 && preprocess.contrast_lower >= 0 &&
                  preprocess.contrast_lower <= preprocess.contrast_upper,
              ValueError, "Preprocess: brightness_max_delta must be >= 0 and 0 <= contrast_lower <= contrast_upper");
  return [p = preprocess](const RawRecord& record, Generator& rng, Sample& out) {
    // Decoding straight into out.image avoids a copy when nothing else runs;
    // the scratch image holds the decoded pixels when a resize follows.
    thread_local Image decoded;
    const bool fixed_size = p.height > 0;
    decode_record_image(record, p, out, fixed_size ? decoded : out.image);
    if (fixed_size) {
      if (decoded.height == p.height && decoded.width == p.width) {
        std::swap(out.image, decoded);
      } else if (p.resize == ResizeMode::ShortSideCenterCrop) {
        out.image = resize_short_side_center_crop(decoded, p.height, p.width);
      } else {
        resize_bilinear_into(decoded, p.height, p.width, out.image);
      }
    }
    if (p.random_crop_height > 0) out.image = random_crop(out.image, p.random_crop_height, p.random_crop_width, rng);
    if (p.random_flip) random_flip_horizontal(out.image, rng);
    if (p.brightness_max_delta > 0) random_brightness(out.image, p.brightness_max_delta, rng);
    if (p.contrast_lower != 1.0f || p.contrast_upper != 1.0f)
      random_contrast(out.image, p.contrast_lower, p.contrast_upper, rng);
  };
}

}  // namespace petal::data
