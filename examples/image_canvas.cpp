#include "examples/image_canvas.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/error.hpp"

namespace petal::examples {

namespace {

struct Glyph {
  char c;
  const char* rows[7];  // '#' = ink
};

// Drawn for this file: 5 columns x 7 rows per character.
constexpr Glyph kGlyphs[] = {
    {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
    {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
    {'b', {"#....", "#....", "####.", "#...#", "#...#", "#...#", "####."}},
    {'c', {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}},
    {'d', {"....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"}},
    {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
    {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
    {'g', {".....", ".####", "#...#", "#...#", ".####", "....#", ".###."}},
    {'h', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
    {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."}},
    {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
    {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"}},
    {'n', {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
    {'p', {".....", ".....", "####.", "#...#", "####.", "#....", "#...."}},
    {'q', {".....", ".....", ".####", "#...#", ".####", "....#", "....#"}},
    {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
    {'s', {".....", ".....", ".###.", "#....", ".###.", "....#", "####."}},
    {'t', {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}},
    {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
    {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'w', {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}},
    {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
    {'y', {".....", ".....", "#...#", "#...#", ".####", "....#", ".###."}},
    {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
    {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
    {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
    {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
    {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
    {'!', {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}},
    {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
};

constexpr std::uint8_t row_bits(const char* row) {
  std::uint8_t bits = 0;
  for (int i = 0; i < 5; ++i) bits = static_cast<std::uint8_t>((bits << 1) | (row[i] == '#' ? 1 : 0));
  return bits;
}

// Bit rows per ASCII code, built once at compile time from kGlyphs.
struct FontTable {
  std::array<std::array<std::uint8_t, 7>, 128> rows{};
  std::array<bool, 128> present{};
};

constexpr FontTable make_font_table() {
  FontTable t{};
  for (const Glyph& g : kGlyphs) {
    const auto code = static_cast<unsigned char>(g.c);
    t.present[code] = true;
    for (int r = 0; r < 7; ++r) t.rows[code][r] = row_bits(g.rows[r]);
  }
  return t;
}

constexpr FontTable kFont = make_font_table();
constexpr std::uint8_t kBox[7] = {0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F};

}  // namespace

const std::uint8_t* glyph_rows(char c) {
  const auto code = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)));
  if (code >= 128 || !kFont.present[code]) return nullptr;
  return kFont.rows[code].data();
}

Canvas::Canvas(int width, int height, Rgb background) : image_(height, width, 3) {
  PETAL_CHECK(width > 0 && height > 0, ValueError, "Canvas: size must be positive, got ", width, "x", height);
  fill_rect(0, 0, width, height, background);
}

void Canvas::set(int x, int y, Rgb color) {
  if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
  std::uint8_t* p = image_.row(y) + x * 3;
  p[0] = color.r;
  p[1] = color.g;
  p[2] = color.b;
}

void Canvas::fill_rect(int x, int y, int width, int height, Rgb color) {
  for (int yy = std::max(y, 0); yy < std::min(y + height, image_.height); ++yy)
    for (int xx = std::max(x, 0); xx < std::min(x + width, image_.width); ++xx) set(xx, yy, color);
}

void Canvas::draw_image(const data::Image& source, int x, int y, int width, int height) {
  PETAL_CHECK(source.channels == 3, ValueError, "Canvas::draw_image: needs an RGB image, got ", source.shape_str());
  for (int yy = 0; yy < height; ++yy) {
    const int sy = static_cast<int>(static_cast<std::int64_t>(yy) * source.height / height);
    for (int xx = 0; xx < width; ++xx) {
      const int sx = static_cast<int>(static_cast<std::int64_t>(xx) * source.width / width);
      const std::uint8_t* p = source.row(sy) + sx * 3;
      set(x + xx, y + yy, {p[0], p[1], p[2]});
    }
  }
}

void Canvas::draw_text(std::string_view text, int x, int y, int scale, Rgb color) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t* rows = glyph_rows(text[i]);
    if (!rows) rows = kBox;
    const int left = x + static_cast<int>(i) * 6 * scale;
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 5; ++c)
        if (rows[r] & (0x10 >> c)) fill_rect(left + c * scale, y + r * scale, scale, scale, color);
  }
}

}  // namespace petal::examples
