// A tiny RGB canvas for figures the examples write as PNG (the 3x3 grid of
// predicted photos): filled rectangles, scaled image copies and text in an
// embedded 5x7 bitmap font (lower-case letters, digits and a little
// punctuation; upper case is drawn in lower case, anything else as a box).
#pragma once

#include <cstdint>
#include <string_view>

#include "data/image.hpp"

namespace petal::examples {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});

  const data::Image& image() const { return image_; }
  void fill_rect(int x, int y, int width, int height, Rgb color);
  // Copies `source` (3 channels) scaled to width x height (nearest pixel) at (x, y).
  void draw_image(const data::Image& source, int x, int y, int width, int height);
  // Text with its top-left corner at (x, y); every font pixel becomes a
  // scale x scale square. Glyph cells are 6 x 8 font pixels.
  void draw_text(std::string_view text, int x, int y, int scale, Rgb color);
  static int text_width(std::string_view text, int scale) { return static_cast<int>(text.size()) * 6 * scale; }

 private:
  void set(int x, int y, Rgb color);
  data::Image image_;
};

// The 7 rows of a glyph, bit 4 = leftmost of the 5 columns. nullptr when the
// font has no glyph for c (after mapping upper case to lower case).
const std::uint8_t* glyph_rows(char c);

}  // namespace petal::examples
