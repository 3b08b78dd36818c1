#include "data/image_ops.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

namespace petal::data {
namespace {

// Source indices and weight for one output coordinate (TF's
// compute_interpolation_weights with half-pixel centres).
struct Tap {
  int lower;
  int upper;
  float frac;  // weight of upper
};

std::vector<Tap> make_taps(int in_size, int out_size) {
  std::vector<Tap> taps(static_cast<std::size_t>(out_size));
  const double scale = static_cast<double>(in_size) / out_size;
  for (int i = 0; i < out_size; ++i) {
    const double in = (i + 0.5) * scale - 0.5;
    const double floor_in = std::floor(in);
    taps[i].lower = std::max(static_cast<int>(floor_in), 0);
    taps[i].upper = std::min(static_cast<int>(std::ceil(in)), in_size - 1);
    taps[i].frac = static_cast<float>(in - floor_in);
  }
  return taps;
}

std::uint8_t saturate(float v) {
  return static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0f, 255.0f));
}

void check_image(const Image& image, const char* op) {
  PETAL_CHECK(image.height > 0 && image.width > 0 && image.channels > 0 && image.size() ==
                  static_cast<std::size_t>(image.height) * image.width * image.channels,
              ValueError, op, ": invalid image ", image.shape_str(), " with ", image.size(), " bytes");
}

}  // namespace

void resize_bilinear_into(const Image& image, int out_height, int out_width, Image& out) {
  check_image(image, "resize_bilinear");
  PETAL_CHECK(out_height > 0 && out_width > 0, ValueError, "resize_bilinear: output size ", out_height, "x",
              out_width, " must be positive (input ", image.shape_str(), ")");
  PETAL_CHECK(&image != &out, ValueError, "resize_bilinear: output must not alias the input");
  const int c = image.channels;
  out.reset(out_height, out_width, c);
  if (out_height == image.height && out_width == image.width) {
    std::memcpy(out.data(), image.data(), image.size());
    return;
  }
  const std::vector<Tap> ys = make_taps(image.height, out_height);
  const std::vector<Tap> xs = make_taps(image.width, out_width);
  // Horizontal pass into two float rows, then a vertical blend: each source
  // row pair is interpolated once per output row.
  std::vector<float> top(static_cast<std::size_t>(out_width) * c), bottom(top.size());
  auto horizontal = [&](int y, std::vector<float>& dst) {
    const std::uint8_t* src = image.row(y);
    for (int x = 0; x < out_width; ++x) {
      const Tap& t = xs[x];
      const std::uint8_t* a = src + static_cast<std::size_t>(t.lower) * c;
      const std::uint8_t* b = src + static_cast<std::size_t>(t.upper) * c;
      for (int k = 0; k < c; ++k) dst[x * c + k] = a[k] + (b[k] - a[k]) * t.frac;
    }
  };
  int top_row = -1, bottom_row = -1;
  for (int y = 0; y < out_height; ++y) {
    const Tap& t = ys[y];
    if (t.lower != top_row) {
      if (t.lower == bottom_row) std::swap(top, bottom), std::swap(top_row, bottom_row);
      else horizontal(t.lower, top), top_row = t.lower;
    }
    if (t.upper != bottom_row) horizontal(t.upper, bottom), bottom_row = t.upper;
    std::uint8_t* dst = out.row(y);
    for (std::size_t i = 0; i < top.size(); ++i) dst[i] = saturate(top[i] + (bottom[i] - top[i]) * t.frac);
  }
}

Image resize_bilinear(const Image& image, int out_height, int out_width) {
  Image out;
  resize_bilinear_into(image, out_height, out_width, out);
  return out;
}

Image crop(const Image& image, int top, int left, int height, int width) {
  check_image(image, "crop");
  // In 64 bits: top + height may overflow an int (a fuzzed INT_MAX height).
  PETAL_CHECK(height > 0 && width > 0 && top >= 0 && left >= 0 &&
                  std::int64_t{top} + height <= image.height && std::int64_t{left} + width <= image.width,
              IndexError, "crop: ", height, "x", width, " at (", top, ", ", left, ") does not fit in ",
              image.shape_str());
  Image out(height, width, image.channels);
  const std::size_t row_bytes = static_cast<std::size_t>(width) * image.channels;
  for (int y = 0; y < height; ++y)
    std::memcpy(out.row(y), image.row(top + y) + static_cast<std::size_t>(left) * image.channels, row_bytes);
  return out;
}

Image center_crop(const Image& image, int height, int width) {
  // Positive first: image.height - height overflows for a negative height.
  PETAL_CHECK(height > 0 && width > 0 && height <= image.height && width <= image.width, IndexError, "center_crop: ",
              height, "x", width, " is empty or larger than the image ", image.shape_str());
  return crop(image, (image.height - height) / 2, (image.width - width) / 2, height, width);
}

Image random_crop(const Image& image, int height, int width, Generator& gen) {
  PETAL_CHECK(height > 0 && width > 0 && height <= image.height && width <= image.width, IndexError,
              "random_crop: ", height, "x", width, " does not fit in ", image.shape_str());
  const int top = static_cast<int>(gen.uniform_int(static_cast<std::uint64_t>(image.height - height + 1)));
  const int left = static_cast<int>(gen.uniform_int(static_cast<std::uint64_t>(image.width - width + 1)));
  return crop(image, top, left, height, width);
}

void flip_horizontal(Image& image) {
  const int c = image.channels;
  for (int y = 0; y < image.height; ++y) {
    std::uint8_t* row = image.row(y);
    for (int l = 0, r = image.width - 1; l < r; ++l, --r)
      for (int k = 0; k < c; ++k) std::swap(row[l * c + k], row[r * c + k]);
  }
}

bool random_flip_horizontal(Image& image, Generator& gen) {
  const bool flip = gen.uniform_int(2) == 1;
  if (flip) flip_horizontal(image);
  return flip;
}

void adjust_brightness(Image& image, float delta) {
  // A NaN or infinite value would reach saturate() as NaN, whose cast to uint8 is undefined.
  PETAL_CHECK(std::isfinite(delta), ValueError, "adjust_brightness: delta ", delta, " is not finite");
  // Every value maps through the same function, so one table serves all.
  std::uint8_t table[256];
  for (int v = 0; v < 256; ++v) table[v] = saturate(v + delta * 255.0f);
  for (auto& p : image.pixels) p = table[p];
}

void adjust_contrast(Image& image, float factor) {
  PETAL_CHECK(std::isfinite(factor), ValueError, "adjust_contrast: factor ", factor, " is not finite");
  const int c = image.channels;
  if (image.size() == 0) return;
  std::vector<double> mean(static_cast<std::size_t>(c), 0.0);
  for (std::size_t i = 0; i < image.size(); ++i) mean[i % c] += image.pixels[i];
  const double n = static_cast<double>(image.size() / c);
  std::vector<std::array<std::uint8_t, 256>> tables(static_cast<std::size_t>(c));
  for (int k = 0; k < c; ++k) {
    const float m = static_cast<float>(mean[k] / n);
    for (int v = 0; v < 256; ++v) tables[k][v] = saturate((v - m) * factor + m);
  }
  for (std::size_t i = 0; i < image.size(); ++i) image.pixels[i] = tables[i % c][image.pixels[i]];
}

void random_brightness(Image& image, float max_delta, Generator& gen) {
  PETAL_CHECK(max_delta >= 0 && std::isfinite(max_delta), ValueError, "random_brightness: max_delta ", max_delta,
              " must be finite and >= 0");
  adjust_brightness(image, (gen.uniform_float() * 2.0f - 1.0f) * max_delta);
}

void random_contrast(Image& image, float lower, float upper, Generator& gen) {
  PETAL_CHECK(0 <= lower && lower <= upper && std::isfinite(upper), ValueError,
              "random_contrast: need finite 0 <= lower <= upper, got [", lower, ", ", upper, "]");
  adjust_contrast(image, lower + gen.uniform_float() * (upper - lower));
}

Image resize_short_side_center_crop(const Image& image, int height, int width) {
  check_image(image, "resize_short_side_center_crop");
  PETAL_CHECK(height > 0 && width > 0, ValueError, "resize_short_side_center_crop: size ", height, "x", width,
              " must be positive");
  const double scale = std::max(static_cast<double>(height) / image.height, static_cast<double>(width) / image.width);
  // The side that sets the scale lands exactly on its target; max() guards
  // the other against rounding below it.
  const int new_h = std::max(height, static_cast<int>(std::floor(image.height * scale)));
  const int new_w = std::max(width, static_cast<int>(std::floor(image.width * scale)));
  const Image resized = resize_bilinear(image, new_h, new_w);
  return center_crop(resized, height, width);
}

}  // namespace petal::data
