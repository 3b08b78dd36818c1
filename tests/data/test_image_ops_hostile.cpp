// Image ops on arguments found by fuzzing (tests/fuzz/README.md): sizes whose
// arithmetic overflows an int and non-finite augmentation bounds give a
// petal error, never undefined behaviour (the sanitizer build checks that).
#include <doctest/doctest.h>

#include <climits>
#include <limits>

#include "core/error.hpp"
#include "core/random.hpp"
#include "data/image_ops.hpp"

using namespace petal;
using namespace petal::data;

TEST_CASE("crop and center_crop refuse sizes whose sums or differences overflow an int") {
  Image img(20, 30, 3);
  CHECK_THROWS_AS(crop(img, 13, 0, INT_MAX, 5), IndexError);
  CHECK_THROWS_AS(crop(img, 0, 13, 5, INT_MAX), IndexError);
  CHECK_THROWS_AS(center_crop(img, INT_MIN, 5), IndexError);
  CHECK_THROWS_AS(center_crop(img, 5, INT_MIN), IndexError);
  CHECK_THROWS_AS(center_crop(img, 0, 5), IndexError);
  CHECK(center_crop(img, 20, 30).shape_str() == "20x30x3");
}

TEST_CASE("brightness and contrast refuse non-finite amounts instead of casting NaN to uint8") {
  Image img(4, 4, 3);
  Generator gen(1);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(random_contrast(img, 0.0f, inf, gen), ValueError);
  CHECK_THROWS_AS(random_contrast(img, inf, inf, gen), ValueError);
  CHECK_THROWS_AS(random_brightness(img, inf, gen), ValueError);
  CHECK_THROWS_AS(random_brightness(img, nan, gen), ValueError);
  CHECK_THROWS_AS(adjust_contrast(img, nan), ValueError);
  CHECK_THROWS_AS(adjust_brightness(img, -inf), ValueError);
  random_contrast(img, 0.5f, 1.5f, gen);  // finite bounds still work
  random_brightness(img, 0.2f, gen);
}
