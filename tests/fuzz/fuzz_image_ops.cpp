// Image resize, crops, flips and photometric ops (data/image_ops.cpp) on an
// image and arguments taken from the input (sizes and offsets anywhere in the
// int range, floats including NaN and infinities where the op validates them).
// Invariants:
//  - every op throws petal::Error or returns an image of the asked size with
//    the input's channels and height * width * channels bytes;
//  - resize to the same size is the identity; every resized value lies within
//    its channel's [min, max] in the input (bilinear weights are convex);
//  - crop copies exactly the rectangle and throws IndexError exactly when the
//    rectangle is not inside the image; center_crop is crop at the centre;
//  - flipping twice is the identity; brightness 0 and contrast 1 are the
//    identity; brightness moves every value in the direction of its sign.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "data/image_ops.hpp"
#include "fuzz_common.hpp"

using namespace petal;
using namespace petal::data;

namespace {

void check_image(const Image& out, int height, int width, int channels) {
  FUZZ_CHECK(out.height == height && out.width == width && out.channels == channels, out.shape_str(), " instead of ",
             height, "x", width, "x", channels);
  FUZZ_CHECK(out.size() == static_cast<std::size_t>(height) * width * channels);
}

// A photometric adjustment (brightness, contrast) of a copy of image by arg
// keeps its geometry, and at its neutral argument leaves the image as it
// was. Returns the copy adjusted by arg.
template <class Adjust>
Image check_photometric(const Image& image, float arg, float neutral, const char* neutral_name, Adjust&& adjust) {
  Image out = image;
  adjust(out, arg);
  check_image(out, image.height, image.width, image.channels);
  Image same = image;
  adjust(same, neutral);
  FUZZ_CHECK(same == image, neutral_name, " changed the image");
  return out;
}

// A size: usually small, sometimes anything an int can hold.
int size_arg(FuzzedDataProvider& in, int typical_max) {
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 7: return in.ConsumeIntegral<int>();
    case 6: return in.ConsumeIntegralInRange<int>(-2, 0);
    default: return in.ConsumeIntegralInRange<int>(1, typical_max);
  }
}

// An offset: usually inside the image or just outside, sometimes any int.
int offset_arg(FuzzedDataProvider& in, int typical_max) {
  if (in.ConsumeIntegralInRange<int>(0, 7) == 7) return in.ConsumeIntegral<int>();
  return in.ConsumeIntegralInRange<int>(-1, typical_max);
}

float float_arg(FuzzedDataProvider& in, bool any) {
  if (any && in.ConsumeIntegralInRange<int>(0, 7) == 7) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: return std::numeric_limits<float>::quiet_NaN();
      case 1: return std::numeric_limits<float>::infinity();
      case 2: return -std::numeric_limits<float>::infinity();
      default: return in.ConsumeFloatingPoint<float>();
    }
  }
  return in.ConsumeFloatingPointInRange<float>(-4.0f, 4.0f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const int h = in.ConsumeIntegralInRange<int>(1, 48);
  const int w = in.ConsumeIntegralInRange<int>(1, 48);
  const int c = in.ConsumeIntegralInRange<int>(1, 4);
  Image image(h, w, c);
  // Pixels from the input, repeated when it runs short.
  const std::vector<std::uint8_t> source = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, image.size()));
  for (std::size_t i = 0; i < image.size(); ++i) image.pixels[i] = source.empty() ? static_cast<std::uint8_t>(i * 7) : source[i % source.size()];
  std::vector<std::uint8_t> lo(c, 255), hi(c, 0);
  for (std::size_t i = 0; i < image.size(); ++i) {
    lo[i % c] = std::min(lo[i % c], image.pixels[i]);
    hi[i % c] = std::max(hi[i % c], image.pixels[i]);
  }
  Generator gen(in.ConsumeIntegral<std::uint64_t>());

  // Every op starts from the same image (only the random ops' generator
  // carries over), so a long sequence adds time, not coverage: inputs of
  // hundreds of ops ran at 600-800 executions per second.
  constexpr int kMaxOps = 16;
  for (int op = 0; op < kMaxOps && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange<int>(0, 8)) {
      case 0: {  // resize
        const int oh = size_arg(in, 96), ow = size_arg(in, 96);
        Image out;
        // Larger outputs only cost time: the size checks they could reach are the
        // ones of negative and zero sizes, which pass this bound.
        if (static_cast<std::int64_t>(oh) * ow > (1 << 16)) break;
        if (!fuzz::expect_ok_or_error("resize_bilinear", [&] { out = resize_bilinear(image, oh, ow); })) {
          FUZZ_CHECK(oh <= 0 || ow <= 0, "resize to ", oh, "x", ow, " failed");
          break;
        }
        check_image(out, oh, ow, c);
        if (oh == h && ow == w) FUZZ_CHECK(out == image, "resize to the same size changed the image");
        for (std::size_t i = 0; i < out.size(); ++i)
          FUZZ_CHECK(out.pixels[i] >= lo[i % c] && out.pixels[i] <= hi[i % c], "resized value ", int(out.pixels[i]),
                     " outside the input's channel range [", int(lo[i % c]), ", ", int(hi[i % c]), "]");
        Image into(3, 3, 1);  // a reused buffer of another shape
        fuzz::expect_ok("resize_bilinear_into", [&] { resize_bilinear_into(image, oh, ow, into); });
        FUZZ_CHECK(into == out);
        break;
      }
      case 1: {  // crop
        const int top = offset_arg(in, 48), left = offset_arg(in, 48);
        const int ch = size_arg(in, 48), cw = size_arg(in, 48);
        const bool inside = ch > 0 && cw > 0 && top >= 0 && left >= 0 && static_cast<std::int64_t>(top) + ch <= h &&
                            static_cast<std::int64_t>(left) + cw <= w;
        Image out;
        bool index_error = false;
        const bool ok = fuzz::expect_ok_or_error("crop", [&] {
          try {
            out = crop(image, top, left, ch, cw);
          } catch (const IndexError&) {
            index_error = true;
            throw;
          }
        });
        FUZZ_CHECK(ok == inside, "crop ", ch, "x", cw, " at (", top, ", ", left, ") of ", image.shape_str(), ": ",
                   ok ? "succeeded" : "failed");
        if (!ok) {
          FUZZ_CHECK(index_error, "crop outside the image threw something other than IndexError");
          break;
        }
        check_image(out, ch, cw, c);
        for (int y = 0; y < ch; ++y)
          FUZZ_CHECK(std::equal(out.row(y), out.row(y) + static_cast<std::size_t>(cw) * c,
                                image.row(top + y) + static_cast<std::size_t>(left) * c));
        break;
      }
      case 2: {  // center and random crops
        const int ch = size_arg(in, 48), cw = size_arg(in, 48);
        Image centre, random;
        if (fuzz::expect_ok_or_error("center_crop", [&] { centre = center_crop(image, ch, cw); })) {
          check_image(centre, ch, cw, c);
          FUZZ_CHECK(centre == crop(image, (h - ch) / 2, (w - cw) / 2, ch, cw));
        }
        if (fuzz::expect_ok_or_error("random_crop", [&] { random = random_crop(image, ch, cw, gen); }))
          check_image(random, ch, cw, c);
        break;
      }
      case 3: {  // flips
        Image flipped = image;
        flip_horizontal(flipped);
        check_image(flipped, h, w, c);
        for (int x = 0; x < w; ++x)
          FUZZ_CHECK(std::equal(flipped.row(0) + static_cast<std::size_t>(x) * c, flipped.row(0) + static_cast<std::size_t>(x + 1) * c,
                                image.row(0) + static_cast<std::size_t>(w - 1 - x) * c));
        const bool did = random_flip_horizontal(flipped, gen);
        if (!did) flip_horizontal(flipped);
        FUZZ_CHECK(flipped == image, "two flips are not the identity");
        break;
      }
      case 4: {  // brightness
        const float delta = float_arg(in, false);
        const Image out = check_photometric(image, delta, 0.0f, "brightness 0",
                                            [](Image& im, float d) { adjust_brightness(im, d); });
        for (std::size_t i = 0; i < out.size(); ++i)
          FUZZ_CHECK(delta >= 0 ? out.pixels[i] >= image.pixels[i] : out.pixels[i] <= image.pixels[i]);
        break;
      }
      case 5:  // contrast
        check_photometric(image, float_arg(in, false), 1.0f, "contrast 1",
                          [](Image& im, float f) { adjust_contrast(im, f); });
        break;
      case 6: {  // random photometric ops validate their arguments
        const float a = float_arg(in, true), b = float_arg(in, true);
        Image out = image;
        if (fuzz::expect_ok_or_error("random_brightness", [&] { random_brightness(out, a, gen); }))
          check_image(out, h, w, c);
        if (fuzz::expect_ok_or_error("random_contrast", [&] { random_contrast(out, a, b, gen); }))
          check_image(out, h, w, c);
        break;
      }
      case 7: {  // resize + center crop, as the shards were made
        const int oh = size_arg(in, 96), ow = size_arg(in, 96);
        // The intermediate image grows with the output's aspect ratio (a 1x48
        // input cropped to 128x128 resizes to 128x6144): bound its area, which
        // only costs time.
        if (oh > 128 || ow > 128) break;
        const double scale = std::max(static_cast<double>(oh) / h, static_cast<double>(ow) / w);
        if (oh > 0 && ow > 0 && h * scale * w * scale > (1 << 14)) break;
        Image out;
        if (fuzz::expect_ok_or_error("resize_short_side_center_crop",
                                     [&] { out = resize_short_side_center_crop(image, oh, ow); }))
          check_image(out, oh, ow, c);
        else
          FUZZ_CHECK(oh <= 0 || ow <= 0, "resize_short_side_center_crop to ", oh, "x", ow, " of ", image.shape_str(),
                     " failed");
        break;
      }
      default: {  // the float conversions the batches use
        std::vector<float> f(image.size());
        const bool zero_one = in.ConsumeBool();
        pixels_to_float(image.data(), f.data(), image.size(), zero_one ? PixelScale::ZeroOne : PixelScale::MinusOneOne);
        // A multiply by the reciprocal: within 2 ulp (2.4e-7) of x / 255 or x / 127.5 - 1.
        for (std::size_t i = 0; i < f.size(); ++i) {
          const double exact = zero_one ? image.pixels[i] / 255.0 : image.pixels[i] / 127.5 - 1.0;
          FUZZ_CHECK(std::fabs(f[i] - exact) <= 2.4e-7, int(image.pixels[i]), " -> ", f[i]);
        }
        break;
      }
    }
  }
  return 0;
}
