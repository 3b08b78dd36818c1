#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "core/random.hpp"
#include "data/image_io.hpp"
#include "data/image_ops.hpp"
#include "data/jpeg.hpp"
#include "data/png.hpp"
#include "temp_dir.hpp"

using namespace petal::data;

namespace {

// A smooth colour gradient (compresses well and survives JPEG closely).
Image gradient(int h, int w, int c = 3) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) img.row(y)[x * c + k] = static_cast<std::uint8_t>((x * 255 / std::max(1, w - 1) + y * 3 + k * 40) % 256);
  return img;
}

double mean_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.size() == b.size());
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / static_cast<double>(a.size());
}

}  // namespace

TEST_CASE("JPEG encode -> decode") {
  const Image img = gradient(37, 53);
  const std::string jpeg = encode_jpeg(img, {95, false});
  const JpegInfo info = read_jpeg_info(jpeg);
  CHECK(info.width == 53);
  CHECK(info.height == 37);
  const Image back = decode_jpeg(jpeg);
  CHECK(back.shape_str() == "37x53x3");
  CHECK(mean_abs_diff(img, back) < 3.0);

  SUBCASE("grayscale becomes RGB") {
    const Image gray = gradient(16, 16, 1);
    const Image rgb = decode_jpeg(encode_jpeg(gray));
    CHECK(rgb.channels == 3);
    CHECK(std::abs(int(rgb.pixels[0]) - int(gray.pixels[0])) <= 2);
  }
  SUBCASE("pixel limit is checked from the header") {
    JpegDecodeOptions options;
    options.max_pixels = 37 * 53 - 1;
    CHECK_THROWS_AS(decode_jpeg(jpeg, options), petal::ValueError);
    options.max_pixels = 37 * 53;
    CHECK(decode_jpeg(jpeg, options).width == 53);
  }
}

TEST_CASE("bad JPEGs give FormatError naming the source") {
  const std::string jpeg = encode_jpeg(gradient(64, 64));
  auto check_error = [](const std::string& bytes) {
    try {
      decode_jpeg(bytes, {}, "shard.tfrec: record 3");
      FAIL("no error");
    } catch (const petal::FormatError& e) {
      CHECK(std::string(e.what()).find("shard.tfrec: record 3") != std::string::npos);
    }
  };
  check_error("");
  check_error("not a jpeg at all");
  check_error(jpeg.substr(0, 10));                 // header cut
  check_error(jpeg.substr(0, jpeg.size() / 2));    // scan cut: a libjpeg warning, refused
  std::string garbled = jpeg;
  for (std::size_t i = garbled.size() / 3; i < garbled.size() / 3 + 40; ++i) garbled[i] = '\xff';
  check_error(garbled.substr(0, garbled.size()));
  petal::Generator gen(9);
  for (int trial = 0; trial < 50; ++trial) {
    std::string noise = "\xff\xd8\xff";
    for (int i = 0; i < 300; ++i) noise.push_back(static_cast<char>(gen.next_u64()));
    CHECK_THROWS_AS(decode_jpeg(noise), petal::Error);
  }
  JpegDecodeOptions lenient;
  lenient.accept_warnings = true;
  CHECK(decode_jpeg(jpeg.substr(0, jpeg.size() / 2), lenient).width == 64);
}

TEST_CASE("PNG round trips for 1 to 4 channels") {
  for (int c = 1; c <= 4; ++c) {
    const Image img = gradient(9, 13, c);
    const std::string png = encode_png(img);
    PngDecodeOptions keep;
    keep.channels = 0;
    CHECK(decode_png(png, keep) == img);
  }
  // Conversions: gray -> RGB, RGBA -> RGB drops alpha.
  const Image gray = gradient(5, 6, 1);
  const Image rgb = decode_png(encode_png(gray));
  CHECK(rgb.channels == 3);
  CHECK(rgb.pixels[3 * 7 + 1] == gray.pixels[7]);
  const Image rgba = gradient(5, 6, 4);
  const Image dropped = decode_png(encode_png(rgba));
  CHECK(dropped.pixels[3 * 7 + 2] == rgba.pixels[4 * 7 + 2]);
  PngDecodeOptions four;
  four.channels = 4;
  const Image rgb_to_rgba = decode_png(encode_png(gradient(3, 3, 3)), four);
  CHECK(rgb_to_rgba.channels == 4);
  CHECK(rgb_to_rgba.pixels[3] == 255);
}

TEST_CASE("bad PNGs give FormatError; write_png writes a file") {
  const std::string png = encode_png(gradient(20, 20));
  CHECK_THROWS_AS(decode_png("nope"), petal::FormatError);
  CHECK_THROWS_AS(decode_png(png.substr(0, png.size() / 2)), petal::FormatError);
  std::string bad = png;
  bad[40] ^= 0x55;  // inside IDAT: CRC error
  CHECK_THROWS_AS(decode_png(bad), petal::FormatError);
  PngDecodeOptions small;
  small.max_pixels = 10;
  CHECK_THROWS_AS(decode_png(png, small), petal::ValueError);

  petal::data::testing::TempDir dir;
  const Image img = gradient(4, 7);
  write_png(dir / "plot.png", img.width, img.height, img.channels, img.data());
  CHECK(read_image(dir / "plot.png") == img);
  CHECK_THROWS_AS(write_png(dir / "missing" / "x.png", img), petal::IOError);
  CHECK_THROWS_AS(decode_image("GIF89a...."), petal::FormatError);
}

TEST_CASE("sample photos decode") {
  const auto dir = petal::data::testing::shared_dir() / "data" / "samples";
  for (const char* name : {"grace_hopper.jpg", "cat.jpg", "bird.jpg"}) {
    const Image img = read_image(dir / name);
    CHECK(img.channels == 3);
    CHECK(img.width > 100);
    CHECK(img.height > 100);
  }
}

TEST_CASE("bilinear resize uses half-pixel centres") {
  SUBCASE("identity") {
    const Image img = gradient(8, 9);
    CHECK(resize_bilinear(img, 8, 9) == img);
  }
  SUBCASE("2x upsampling of one row [0, 100]") {
    Image row(1, 2, 1);
    row.pixels = {0, 100};
    const Image up = resize_bilinear(row, 1, 4);
    // Source positions -0.25, 0.25, 0.75, 1.25 -> clamped 0, 25, 75, 100.
    CHECK(up.pixels == std::vector<std::uint8_t>{0, 25, 75, 100});
  }
  SUBCASE("2x downsampling averages pairs") {
    Image row(1, 4, 1);
    row.pixels = {0, 10, 20, 30};
    const Image down = resize_bilinear(row, 1, 2);
    CHECK(down.pixels == std::vector<std::uint8_t>{5, 25});
  }
  SUBCASE("matches a direct per-pixel formula in 2-D with 3 channels") {
    const Image img = gradient(13, 17);
    const Image out = resize_bilinear(img, 7, 29);
    auto tap = [](int i, int in, int out_size, int& lo, int& hi, double& f) {
      const double pos = (i + 0.5) * in / out_size - 0.5;
      lo = std::max(0, static_cast<int>(std::floor(pos)));
      hi = std::min(in - 1, static_cast<int>(std::ceil(pos)));
      f = pos - std::floor(pos);
    };
    int worst = 0;
    for (int y = 0; y < 7; ++y)
      for (int x = 0; x < 29; ++x)
        for (int k = 0; k < 3; ++k) {
          int y0, y1, x0, x1;
          double fy, fx;
          tap(y, 13, 7, y0, y1, fy);
          tap(x, 17, 29, x0, x1, fx);
          auto at = [&](int yy, int xx) { return double(img.row(yy)[xx * 3 + k]); };
          const double top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
          const double bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
          const double v = top + (bottom - top) * fy;
          worst = std::max(worst, std::abs(int(std::lround(v)) - int(out.row(y)[x * 3 + k])));
        }
    CHECK(worst <= 1);
  }
}

TEST_CASE("crops, flips, brightness, contrast") {
  const Image img = gradient(10, 12);
  const Image c = crop(img, 2, 3, 4, 5);
  CHECK(c.shape_str() == "4x5x3");
  CHECK(c.row(1)[0] == img.row(3)[9]);
  const Image cc = center_crop(img, 4, 4);
  CHECK(cc.row(0)[0] == img.row(3)[4 * 3]);
  CHECK_THROWS_AS(crop(img, 8, 0, 4, 4), petal::IndexError);
  CHECK_THROWS_AS(center_crop(img, 11, 4), petal::IndexError);

  petal::Generator g1(5), g2(5);
  CHECK(random_crop(img, 5, 5, g1) == random_crop(img, 5, 5, g2));

  Image flipped = img;
  flip_horizontal(flipped);
  CHECK(flipped.row(2)[0] == img.row(2)[11 * 3]);
  CHECK(flipped.row(2)[2] == img.row(2)[11 * 3 + 2]);
  flip_horizontal(flipped);
  CHECK(flipped == img);
  int flips = 0;
  petal::Generator g3(1);
  for (int i = 0; i < 200; ++i) {
    Image copy = img;
    flips += random_flip_horizontal(copy, g3);
  }
  CHECK(flips > 70);
  CHECK(flips < 130);

  Image bright = img;
  adjust_brightness(bright, 0.1f);
  CHECK(int(bright.pixels[0]) == std::min(255, int(img.pixels[0]) + 26));
  Image dark(1, 2, 1);
  dark.pixels = {10, 250};
  adjust_brightness(dark, 0.5f);
  CHECK(dark.pixels == std::vector<std::uint8_t>{138, 255});

  Image contrast(1, 2, 1);
  contrast.pixels = {100, 200};  // mean 150
  adjust_contrast(contrast, 2.0f);
  CHECK(contrast.pixels == std::vector<std::uint8_t>{50, 250});
}

TEST_CASE("resize short side then center crop keeps the aspect ratio") {
  const Image wide = gradient(100, 300);
  const Image out = resize_short_side_center_crop(wide, 50, 50);
  CHECK(out.shape_str() == "50x50x3");
  // The middle of a 50x150 resize: columns 50..99.
  const Image full = resize_bilinear(wide, 50, 150);
  CHECK(out == center_crop(full, 50, 50));
  CHECK(resize_short_side_center_crop(gradient(30, 20), 192, 192).shape_str() == "192x192x3");
}

TEST_CASE("pixels to float32 in [0, 1] and [-1, 1]") {
  Image img(1, 3, 1);
  img.pixels = {0, 51, 255};
  const auto zero_one = image_to_float_tensor(img, PixelScale::ZeroOne).to_vector<float>();
  CHECK(zero_one[0] == 0.0f);
  CHECK(zero_one[1] == doctest::Approx(0.2f));
  CHECK(zero_one[2] == doctest::Approx(1.0f));
  const auto minus_one_one = image_to_float_tensor(img, PixelScale::MinusOneOne).to_vector<float>();
  CHECK(minus_one_one[0] == -1.0f);
  CHECK(minus_one_one[1] == doctest::Approx(51 / 127.5 - 1));
  CHECK(minus_one_one[2] == doctest::Approx(1.0f));
  const petal::Tensor t = image_to_tensor(img);
  CHECK(t.shape() == petal::Shape{1, 3, 1});
  CHECK(tensor_to_image(t) == img);
}
