// Depthwise convolution (multiplier 1), forward and backward, compiled once
// per ISA and vectorised over channels (NHWC keeps them innermost).
//
// The forward pass of a 3x3 kernel with stride 1 or 2 computes the output
// in tiles of up to 2 rows x 8 pixels (AVX-512) with the channel slices
// innermost, so it reads its input as contiguous runs and keeps up with
// memory (see forward_band_tiles); rows above and below the image are read
// as zeros and a tile at either end of a row leaves out the column outside
// the image, so with the usual padding every pixel is in a tile. Other
// kernels and strides take a per-pixel loop with clipped taps, or a row
// loop that keeps the nine weight vectors in registers. The backward input
// pass of a stride-1 convolution is a stride-1 forward pass over dy with the
// kernel flipped; other strides gather per input pixel. The weight gradient
// keeps one register accumulator per tap across a row.
#include <vector>

#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/conv/conv_simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);

inline V clamp6(V v) { return vmin(vmax(v, vbroadcast(0.0f)), vbroadcast(6.0f)); }
inline float clamp6(float v) { return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v); }

std::int64_t ceil_div_nonneg(std::int64_t a, std::int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// Output columns [lo, hi) whose windows lie inside the input row.
struct InteriorColumns {
  std::int64_t lo, hi;
};
InteriorColumns interior_columns(const ConvGeometry& g) {
  const std::int64_t lo = std::min(ceil_div_nonneg(g.pad_left, g.stride_w), g.out_w);
  std::int64_t hi = 0;
  const std::int64_t last_start = g.in_w - g.kernel_w + g.pad_left;  // largest ox * stride allowed
  if (last_start >= 0) hi = std::min(last_start / g.stride_w + 1, g.out_w);
  return {lo, std::max(hi, lo)};
}

// ---- forward ----

// One output pixel, channels [c_begin, C), any kernel, taps clipped to the input.
void forward_pixel(const float* x_img, const float* w, const float* bias, float* out, const ConvGeometry& g,
                   std::int64_t oy, std::int64_t ox, bool relu6, std::int64_t c_begin) {
  const std::int64_t C = g.in_c;
  const std::int64_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
  const std::int64_t ky_lo = std::max<std::int64_t>(0, -iy0), ky_hi = std::min(g.kernel_h, g.in_h - iy0);
  const std::int64_t kx_lo = std::max<std::int64_t>(0, -ix0), kx_hi = std::min(g.kernel_w, g.in_w - ix0);
  std::int64_t c = c_begin;
  for (; c + 4 * L <= C; c += 4 * L) {
    V a0 = bias ? vload(bias + c) : vbroadcast(0.0f);
    V a1 = bias ? vload(bias + c + L) : vbroadcast(0.0f);
    V a2 = bias ? vload(bias + c + 2 * L) : vbroadcast(0.0f);
    V a3 = bias ? vload(bias + c + 3 * L) : vbroadcast(0.0f);
    for (std::int64_t ky = ky_lo; ky < ky_hi; ++ky)
      for (std::int64_t kx = kx_lo; kx < kx_hi; ++kx) {
        const float* xp = x_img + ((iy0 + ky) * g.in_w + ix0 + kx) * C + c;
        const float* wp = w + (ky * g.kernel_w + kx) * C + c;
        a0 = vfma(vload(xp), vload(wp), a0);
        a1 = vfma(vload(xp + L), vload(wp + L), a1);
        a2 = vfma(vload(xp + 2 * L), vload(wp + 2 * L), a2);
        a3 = vfma(vload(xp + 3 * L), vload(wp + 3 * L), a3);
      }
    if (relu6) {
      a0 = clamp6(a0), a1 = clamp6(a1), a2 = clamp6(a2), a3 = clamp6(a3);
    }
    vstore(out + c, a0), vstore(out + c + L, a1), vstore(out + c + 2 * L, a2), vstore(out + c + 3 * L, a3);
  }
  for (; c + L <= C; c += L) {
    V a = bias ? vload(bias + c) : vbroadcast(0.0f);
    for (std::int64_t ky = ky_lo; ky < ky_hi; ++ky)
      for (std::int64_t kx = kx_lo; kx < kx_hi; ++kx)
        a = vfma(vload(x_img + ((iy0 + ky) * g.in_w + ix0 + kx) * C + c), vload(w + (ky * g.kernel_w + kx) * C + c),
                 a);
    vstore(out + c, relu6 ? clamp6(a) : a);
  }
  for (; c < C; ++c) {
    float a = bias ? bias[c] : 0.0f;
    for (std::int64_t ky = ky_lo; ky < ky_hi; ++ky)
      for (std::int64_t kx = kx_lo; kx < kx_hi; ++kx)
        a += x_img[((iy0 + ky) * g.in_w + ix0 + kx) * C + c] * w[(ky * g.kernel_w + kx) * C + c];
    out[c] = relu6 ? clamp6(a) : a;
  }
}

// Memory that the next rows will read first (their new input rows), fetched
// a little at a time while this band computes: a single core's hardware
// prefetchers do not run far enough ahead to keep the multiply-adds fed on
// layers far larger than the caches. The lines go out a few per channel
// slice of each tile: a burst of hundreds at once (a narrow row has a single
// tile) stalled the loads behind it. (Prefetching into L2 instead of L1 was
// slower on every MobileNetV2 layer shape.)
struct Prefetch {
  const char* data = nullptr;
  std::int64_t bytes = 0;
  std::int64_t lines_per_step = 0;

  void issue() {
    constexpr std::int64_t kLine = 64;
    for (std::int64_t i = 0; i < lines_per_step && bytes > 0; ++i, data += kLine, bytes -= kLine)
      __builtin_prefetch(data, 0, 3);
  }
};

// 3x3 depthwise on a band of R output rows: `tiles` tiles of R x T pixels
// from output column ox_begin, with the channel slices innermost. A tile
// reads its input rows as contiguous runs of memory, which the prefetchers
// follow; each input vector is loaded once and applied to every output of
// the tile that uses it, so a stride-1 2 x 8 tile needs 40 loads for 144
// multiply-adds; R * T accumulators hide their latency; and input rows
// shared by the band's rows come from L1. (Walking whole rows once per
// 16-channel slice, with a stride of C floats, left the core waiting on L2
// most of the time.)
//
// in_rows holds the band's (R - 1) * S + 3 input rows; a row above or below
// the image is a row of zeros, so the top and bottom rows of the output are
// tiles like any other (a zero tap adds exactly 0: the same sums). A tile
// whose window starts one column left of the image (kSkipFirst) or ends one
// column right of it (kSkipLast) leaves that column out, so the border
// pixels of a row are tiles too: on the 6- to 24-pixel rows of MobileNetV2's
// late layers they were a sixth to a half of the pixels, each through the
// per-pixel loop, which loads a weight vector per multiply-add.
template <int S, int R, int T, bool kRelu6, bool kStream, bool kSkipFirst, bool kSkipLast>
void forward_band_tiles(const float* const* in_rows, const float* w, const float* bias, float* y_band,
                        std::int64_t C, std::int64_t out_row, std::int64_t pad_left, std::int64_t ox_begin,
                        std::int64_t tiles, Prefetch& next) {
  constexpr int K = 3;
  constexpr int kRows = (R - 1) * S + K, kCols = (T - 1) * S + K;
  constexpr int kFirstCol = kSkipFirst ? 1 : 0, kEndCol = kSkipLast ? kCols - 1 : kCols;
  const std::int64_t vec_end = C / L * L;
  for (std::int64_t tile = 0; tile < tiles; ++tile) {
    const std::int64_t ox0 = ox_begin + tile * T;
    // The first input column the tile loads (never one outside the image).
    const std::int64_t first_col = (ox0 * S - pad_left + kFirstCol) * C;
    float* out = y_band + ox0 * C;
    for (std::int64_t c = 0; c < vec_end; c += L) {
      next.issue();
      V wv[K * K];
#pragma GCC unroll 16
      for (int t = 0; t < K * K; ++t) wv[t] = vload(w + t * C + c);
      V acc[R * T];
      const V b = bias ? vload(bias + c) : vbroadcast(0.0f);
#pragma GCC unroll 32
      for (int t = 0; t < R * T; ++t) acc[t] = b;
#pragma GCC unroll 8
      for (int i = 0; i < kRows; ++i) {
        // One pointer stepped by C. Left to itself GCC precomputes every
        // column address, which do not fit the general registers, and
        // reloads each from the stack before its load; the empty asm hides
        // the stepping from that rewrite.
        const float* q = in_rows[i] + first_col + c;
#pragma GCC unroll 64
        for (int j = kFirstCol; j < kEndCol; ++j) {
          const V v = vload(q);
          q += C;
          asm("" : "+r"(q));
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const int ky = i - r * S;
            if (ky < 0 || ky >= K) continue;
#pragma GCC unroll 16
            for (int t = 0; t < T; ++t) {
              const int kx = j - t * S;
              if (kx >= 0 && kx < K) acc[r * T + t] = vfma(v, wv[ky * K + kx], acc[r * T + t]);
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        float* o = out + r * out_row + c;
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t, o += C) {
          const V a = kRelu6 ? clamp6(acc[r * T + t]) : acc[r * T + t];
          if constexpr (kStream) {
            vstream_aligned(o, a);
          } else {
            vstore(o, a);
          }
        }
      }
    }
  }
}

// The tile shapes: on AVX-512's 32 registers up to 2 x 8 accumulators and
// the 9 weight vectors, with tiles of 4 pixels for the rest of a row; AVX2
// and the scalar build keep to single rows of 4.
// AVX2's 16 registers at stride 1: 2 x 3 tiles (9 weights, 6 accumulators,
// the input vector), then single pixels of both rows for what is left of
// the row: 20 input loads for 54 multiply-adds instead of 18 for 36.
// On Zen 3, kernels alone at 1 thread: 1.06-1.15x faster at stride 1, 6x6
// rows included; stride 2 keeps single rows of 4, as tried 2 x 3 was 0.96-1.02x.
constexpr int band_rows(int stride) { return L >= 16 ? 2 : (L == 8 && stride == 1 ? 2 : 1); }
constexpr int wide_tile(int stride) { return L >= 16 ? 8 : (L == 8 && stride == 1 ? 3 : 4); }
constexpr int narrow_tile(int stride) { return L == 8 ? (stride == 1 ? 1 : 2) : 4; }
constexpr int kMaxBandInputRows = (2 - 1) * 2 + 3;
static_assert((band_rows(1) - 1) * 1 + 3 <= kMaxBandInputRows && (band_rows(2) - 1) * 2 + 3 <= kMaxBandInputRows);

// Whether forward_tiles has tiles for this geometry.
bool has_tiles(const ConvGeometry& g) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == g.stride_w && (g.stride_w == 1 || g.stride_w == 2) &&
         g.in_c >= L;
}

// Consecutive tiles of one width along a row; the first may start one
// column left of the image and the last end one column right of it.
struct TileRun {
  std::int64_t ox = 0, count = 0;
  int width = 0;
  bool skip_first = false, skip_last = false;
};

// How every row of the output is cut into tiles (the same for all rows):
// wide tiles, then narrow ones, and what is left of the row by one more
// tile that overlaps the one before it (it writes the same values again).
// Pixels [0, tiled_begin) and [tiled_end, out_w) are left to the per-pixel
// loop: windows more than one column outside the image, or rows narrower
// than a tile.
struct RowTiles {
  // At most: a first wide tile clipping the left column, the other wide
  // tiles, a last one clipping the right column, the same three of narrow
  // tiles, and the overlapping tile.
  static constexpr int kMaxRuns = 8;
  TileRun runs[kMaxRuns];
  int run_count = 0;
  std::int64_t tiles = 0;        // over all runs
  std::int64_t tiled_begin = 0;  // tiles cover [tiled_begin, tiled_end)
  std::int64_t tiled_end = 0;
};

RowTiles plan_row_tiles(const ConvGeometry& g) {
  RowTiles plan;
  const std::int64_t S = g.stride_w;
  const int stride = static_cast<int>(S);
  const int wide = wide_tile(stride), narrow = narrow_tile(stride);
  // Columns whose window is at most one column outside the image on each side.
  std::int64_t lo = 0;
  while (lo < g.out_w && lo * S - g.pad_left < -1) ++lo;
  std::int64_t hi = g.out_w;
  while (hi > lo && (hi - 1) * S - g.pad_left + 2 > g.in_w) --hi;
  plan.tiled_begin = plan.tiled_end = lo;
  auto add = [&](std::int64_t ox, int width) {
    const bool skip_first = ox * S - g.pad_left == -1;
    const bool skip_last = (ox + width - 1) * S - g.pad_left + 2 == g.in_w;
    TileRun* last = plan.run_count > 0 ? &plan.runs[plan.run_count - 1] : nullptr;
    if (last != nullptr && !skip_first && !skip_last && !last->skip_first && !last->skip_last &&
        last->width == width && last->ox + last->count * width == ox) {
      ++last->count;
    } else {
      plan.runs[plan.run_count++] = {ox, 1, width, skip_first, skip_last};
    }
    ++plan.tiles;
    plan.tiled_end = std::max(plan.tiled_end, ox + width);
  };
  std::int64_t pos = lo;
  while (hi - pos >= wide) add(pos, wide), pos += wide;
  while (hi - pos >= narrow) add(pos, narrow), pos += narrow;
  if (pos < hi) {
    if (hi - lo >= wide) {
      add(hi - wide, wide);
    } else if (hi - lo >= narrow) {
      add(hi - narrow, narrow);
    }
  }
  return plan;
}

// forward_band_tiles with the stride, band height, tile width, store flavour
// and clipped columns fixed at compile time (has_tiles(g) must hold); y
// points at output row oy of the image. Tiles that clip a column store
// without streaming (a row has at most two of them).
void forward_tiles(const float* const* in_rows, const float* w, const float* bias, float* y, const ConvGeometry& g,
                   bool relu6, int band, const TileRun& run, Prefetch& next) {
  if (run.count <= 0) return;
  const std::int64_t C = g.in_c, out_row = g.out_w * C;
  // Streaming needs every store vector-aligned.
  const bool stream = g.stream_output && C % L == 0 && reinterpret_cast<std::uintptr_t>(y) % (L * sizeof(float)) == 0;
  auto run_tiles = [&]<int kS, int kR, int kT, bool kRelu6, bool kStream, bool kFirst, bool kLast>() {
    forward_band_tiles<kS, kR, kT, kRelu6, kStream, kFirst, kLast>(in_rows, w, bias, y, C, out_row, g.pad_left,
                                                                  run.ox, run.count, next);
  };
  auto by_clipping = [&]<int kS, int kR, int kT, bool kRelu6>() {
    if (run.skip_first) {
      run.skip_last ? run_tiles.template operator()<kS, kR, kT, kRelu6, false, true, true>()
                    : run_tiles.template operator()<kS, kR, kT, kRelu6, false, true, false>();
    } else if (run.skip_last) {
      run_tiles.template operator()<kS, kR, kT, kRelu6, false, false, true>();
    } else {
      stream ? run_tiles.template operator()<kS, kR, kT, kRelu6, true, false, false>()
             : run_tiles.template operator()<kS, kR, kT, kRelu6, false, false, false>();
    }
  };
  auto by_relu6 = [&]<int kS, int kR, int kT>() {
    relu6 ? by_clipping.template operator()<kS, kR, kT, true>() : by_clipping.template operator()<kS, kR, kT, false>();
  };
  auto by_width = [&]<int kS, int kR>() {
    if (run.width == wide_tile(kS)) {
      by_relu6.template operator()<kS, kR, wide_tile(kS)>();
    } else {
      by_relu6.template operator()<kS, kR, narrow_tile(kS)>();
    }
  };
  auto by_rows = [&]<int kS>() {
    if (band == band_rows(kS)) {
      by_width.template operator()<kS, band_rows(kS)>();
    } else {
      by_width.template operator()<kS, 1>();
    }
  };
  g.stride_w == 1 ? by_rows.template operator()<1>() : by_rows.template operator()<2>();
}

// A row of zeros standing for the input rows above and below the image.
const float* zero_row(std::int64_t floats) {
  thread_local std::vector<float> zeros;
  if (static_cast<std::int64_t>(zeros.size()) < floats) zeros.assign(static_cast<std::size_t>(floats), 0.0f);
  return zeros.data();
}

// One output row of a KH x KW kernel. Per channel slice the KH * KW weight
// vectors stay in registers while the slice walks the row: interior pixels
// (window inside the input) in groups of 4, border pixels (and every pixel
// of a row whose window leaves the input at the top or bottom) with their
// taps clipped, still one load per multiply-add. For the 3x3 geometries the
// tiles do not take (stride 3 and more, fewer channels than a vector, rows
// narrower than a tile).
template <int KH, int KW>
void forward_row(const float* x_img, const float* w, const float* bias, float* y_row, const ConvGeometry& g,
                 std::int64_t oy, bool relu6, const InteriorColumns& cols) {
  const std::int64_t C = g.in_c, sw = g.stride_w;
  const std::int64_t iy0 = oy * g.stride_h - g.pad_top;
  const float* rows[KH];
  bool all_rows = true;
  for (int ky = 0; ky < KH; ++ky) {
    const std::int64_t iy = iy0 + ky;
    const bool inside = iy >= 0 && iy < g.in_h;
    rows[ky] = inside ? x_img + iy * g.in_w * C : nullptr;
    all_rows = all_rows && inside;
  }
  // Without all kernel rows every pixel of the row is a border pixel.
  const std::int64_t ox_lo = all_rows ? cols.lo : g.out_w, ox_hi = all_rows ? cols.hi : g.out_w;
  const std::int64_t step = sw * C;  // input distance between neighbouring outputs
  std::int64_t c = 0;
  for (; c + L <= C; c += L) {
    V wv[KH * KW];
    for (int t = 0; t < KH * KW; ++t) wv[t] = vload(w + t * C + c);
    const V b = bias ? vload(bias + c) : vbroadcast(0.0f);
    for (int side = 0; side < 2; ++side) {
      const std::int64_t lo = side == 0 ? 0 : ox_hi, hi = side == 0 ? ox_lo : g.out_w;
      for (std::int64_t ox = lo; ox < hi; ++ox) {
        V a = b;
        const std::int64_t ix0 = ox * sw - g.pad_left;
        for (int ky = 0; ky < KH; ++ky) {
          if (rows[ky] == nullptr) continue;
          for (int kx = 0; kx < KW; ++kx) {
            const std::int64_t ix = ix0 + kx;
            if (ix >= 0 && ix < g.in_w) a = vfma(vload(rows[ky] + ix * C + c), wv[ky * KW + kx], a);
          }
        }
        vstore(y_row + ox * C + c, relu6 ? clamp6(a) : a);
      }
    }
    std::int64_t ox = ox_lo;
    for (; ox + 4 <= ox_hi; ox += 4) {
      V a0 = b, a1 = b, a2 = b, a3 = b;
      const std::int64_t ix = ox * sw - g.pad_left;
      for (int ky = 0; ky < KH; ++ky)
        for (int kx = 0; kx < KW; ++kx) {
          const float* p = rows[ky] + (ix + kx) * C + c;
          const V wt = wv[ky * KW + kx];
          a0 = vfma(vload(p), wt, a0);
          a1 = vfma(vload(p + step), wt, a1);
          a2 = vfma(vload(p + 2 * step), wt, a2);
          a3 = vfma(vload(p + 3 * step), wt, a3);
        }
      if (relu6) {
        a0 = clamp6(a0), a1 = clamp6(a1), a2 = clamp6(a2), a3 = clamp6(a3);
      }
      float* o = y_row + ox * C + c;
      if (g.stream_output) {
        vstream(o, a0), vstream(o + C, a1), vstream(o + 2 * C, a2), vstream(o + 3 * C, a3);
      } else {
        vstore(o, a0), vstore(o + C, a1), vstore(o + 2 * C, a2), vstore(o + 3 * C, a3);
      }
    }
    for (; ox < ox_hi; ++ox) {
      V a = b;
      const std::int64_t ix = ox * sw - g.pad_left;
      for (int ky = 0; ky < KH; ++ky)
        for (int kx = 0; kx < KW; ++kx) a = vfma(vload(rows[ky] + (ix + kx) * C + c), wv[ky * KW + kx], a);
      vstore(y_row + ox * C + c, relu6 ? clamp6(a) : a);
    }
  }
  if (c < C)
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) forward_pixel(x_img, w, bias, y_row + ox * C, g, oy, ox, relu6, c);
}

// The input rows that output rows [r_first, r_last] read and row r_first - 1
// did not (all of them at the start of an image); nothing at or past row_end.
Prefetch new_input_rows(const float* x, const ConvGeometry& g, std::int64_t r_first, std::int64_t r_last,
                        std::int64_t row_end) {
  r_last = std::min(r_last, row_end - 1);
  if (r_first > r_last) return {};
  const std::int64_t n = r_first / g.out_h, oy = r_first % g.out_h;
  const std::int64_t oy_last = std::min(oy + (r_last - r_first), g.out_h - 1);
  const std::int64_t iy0 = oy * g.stride_h - g.pad_top;
  std::int64_t lo = oy == 0 ? iy0 : iy0 + g.kernel_h - g.stride_h;
  std::int64_t hi = oy_last * g.stride_h - g.pad_top + g.kernel_h;
  lo = std::max<std::int64_t>(lo, 0), hi = std::min(hi, g.in_h);
  if (hi <= lo) return {};
  const std::int64_t row_floats = g.in_w * g.in_c;
  return {reinterpret_cast<const char*>(x + (n * g.in_h + lo) * row_floats),
          (hi - lo) * row_floats * std::int64_t{sizeof(float)}};
}

void forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
             std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t C = g.in_c;
  const bool tiled = has_tiles(g);
  const RowTiles plan = tiled ? plan_row_tiles(g) : RowTiles{};
  const int band_max = band_rows(static_cast<int>(g.stride_w));
  const std::int64_t in_row = g.in_w * C;
  const float* zeros = nullptr;
  for (std::int64_t r = row_begin; r < row_end;) {
    const std::int64_t n = r / g.out_h, oy = r % g.out_h;
    const float* x_img = x + n * g.in_h * in_row;
    float* y_row = y + r * g.out_w * C;
    if (tiled && plan.tiles > 0) {
      const int band = r + band_max <= row_end && oy + band_max <= g.out_h ? band_max : 1;
      const float* in_rows[kMaxBandInputRows];
      const std::int64_t rows_read = (band - 1) * g.stride_h + 3;
      for (std::int64_t i = 0; i < rows_read; ++i) {
        const std::int64_t iy = oy * g.stride_h - g.pad_top + i;
        if (iy >= 0 && iy < g.in_h) {
          in_rows[i] = x_img + iy * in_row;
        } else {
          if (zeros == nullptr) zeros = zero_row(in_row);
          in_rows[i] = zeros;
        }
      }
      Prefetch next = new_input_rows(x, g, r + band, r + 2 * band - 1, row_end);
      const std::int64_t steps = plan.tiles * std::max<std::int64_t>(1, C / L);
      next.lines_per_step = (next.bytes / 64 + steps - 1) / steps;
      for (int k = 0; k < plan.run_count; ++k) forward_tiles(in_rows, w, bias, y_row, g, relu6, band, plan.runs[k], next);
      // The pixels no tile covers, one at a time, and the channels past the
      // last whole vector of the tiled pixels.
      const std::int64_t vec_end = C / L * L;
      for (int i = 0; i < band; ++i) {
        float* yi = y_row + i * g.out_w * C;
        if (vec_end < C)
          for (std::int64_t ox = plan.tiled_begin; ox < plan.tiled_end; ++ox)
            forward_pixel(x_img, w, bias, yi + ox * C, g, oy + i, ox, relu6, vec_end);
        for (std::int64_t ox = 0; ox < plan.tiled_begin; ++ox)
          forward_pixel(x_img, w, bias, yi + ox * C, g, oy + i, ox, relu6, 0);
        for (std::int64_t ox = plan.tiled_end; ox < g.out_w; ++ox)
          forward_pixel(x_img, w, bias, yi + ox * C, g, oy + i, ox, relu6, 0);
      }
      r += band;
    } else if (g.kernel_h == 3 && g.kernel_w == 3) {
      forward_row<3, 3>(x_img, w, bias, y_row, g, oy, relu6, interior_columns(g));
      ++r;
    } else {
      for (std::int64_t ox = 0; ox < g.out_w; ++ox) forward_pixel(x_img, w, bias, y_row + ox * C, g, oy, ox, relu6, 0);
      ++r;
    }
  }
  if (g.stream_output) vstream_fence();
}

// ---- backward: input gradient ----

// Taps of one axis that read input coordinate i: pairs (k, o) with
// o * stride - pad + k == i and 0 <= o < out. At most kMaxTaps are kept.
constexpr int kMaxTaps = 16;
struct AxisTaps {
  int count = 0;
  std::int64_t k[kMaxTaps], o[kMaxTaps];
};
AxisTaps axis_taps(std::int64_t i, std::int64_t kernel, std::int64_t stride, std::int64_t pad, std::int64_t out) {
  AxisTaps taps;
  // k = i + pad - o * stride for the o that keep k inside [0, kernel).
  const std::int64_t t = i + pad;
  std::int64_t o_hi = std::min(t / stride, out - 1);
  for (std::int64_t o = o_hi; o >= 0 && taps.count < kMaxTaps; --o) {
    const std::int64_t k = t - o * stride;
    if (k >= kernel) break;
    taps.k[taps.count] = k, taps.o[taps.count] = o;
    ++taps.count;
  }
  return taps;
}

// dx at one input pixel, gathering every (output pixel, tap) that read it.
void backward_input_pixel(const float* dy_img, const float* w, float* out, const ConvGeometry& g,
                          const AxisTaps& rows, const AxisTaps& cols) {
  const std::int64_t C = g.in_c;
  const std::int64_t n_taps = std::int64_t(rows.count) * cols.count;
  const float* gp[kMaxTaps * kMaxTaps];
  const float* wp[kMaxTaps * kMaxTaps];
  std::int64_t t = 0;
  for (int r = 0; r < rows.count; ++r)
    for (int c = 0; c < cols.count; ++c, ++t) {
      gp[t] = dy_img + (rows.o[r] * g.out_w + cols.o[c]) * C;
      wp[t] = w + (rows.k[r] * g.kernel_w + cols.k[c]) * C;
    }
  std::int64_t c = 0;
  for (; c + 4 * L <= C; c += 4 * L) {
    V a0 = vbroadcast(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (std::int64_t i = 0; i < n_taps; ++i) {
      a0 = vfma(vload(gp[i] + c), vload(wp[i] + c), a0);
      a1 = vfma(vload(gp[i] + c + L), vload(wp[i] + c + L), a1);
      a2 = vfma(vload(gp[i] + c + 2 * L), vload(wp[i] + c + 2 * L), a2);
      a3 = vfma(vload(gp[i] + c + 3 * L), vload(wp[i] + c + 3 * L), a3);
    }
    vstore(out + c, a0), vstore(out + c + L, a1), vstore(out + c + 2 * L, a2), vstore(out + c + 3 * L, a3);
  }
  for (; c + L <= C; c += L) {
    V a = vbroadcast(0.0f);
    for (std::int64_t i = 0; i < n_taps; ++i) a = vfma(vload(gp[i] + c), vload(wp[i] + c), a);
    vstore(out + c, a);
  }
  for (; c < C; ++c) {
    float a = 0.0f;
    for (std::int64_t i = 0; i < n_taps; ++i) a += gp[i][c] * wp[i][c];
    out[c] = a;
  }
}

void backward_input(const float* dy, const float* w, float* dx, const ConvGeometry& g, std::int64_t row_begin,
                    std::int64_t row_end) {
  const std::int64_t C = g.in_c;
  if (g.stride_h == 1 && g.stride_w == 1 && g.pad_top < g.kernel_h && g.pad_left < g.kernel_w) {
    // dx = dy correlated with the flipped kernel, padded by k - 1 - pad.
    std::vector<float> flipped(static_cast<std::size_t>(g.taps() * C));
    for (std::int64_t t = 0; t < g.taps(); ++t)
      std::copy(w + (g.taps() - 1 - t) * C, w + (g.taps() - t) * C, flipped.begin() + t * C);
    ConvGeometry t = g;
    t.in_h = g.out_h, t.in_w = g.out_w, t.out_h = g.in_h, t.out_w = g.in_w;
    t.pad_top = g.kernel_h - 1 - g.pad_top, t.pad_left = g.kernel_w - 1 - g.pad_left;
    forward(dy, flipped.data(), nullptr, dx, t, false, row_begin, row_end);
    return;
  }
  // Strided: gather per input pixel from the taps that read it.
  std::vector<AxisTaps> col_taps(static_cast<std::size_t>(g.in_w));
  for (std::int64_t ix = 0; ix < g.in_w; ++ix)
    col_taps[static_cast<std::size_t>(ix)] = axis_taps(ix, g.kernel_w, g.stride_w, g.pad_left, g.out_w);
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.in_h, iy = r % g.in_h;
    const float* dy_img = dy + n * g.out_h * g.out_w * C;
    const AxisTaps row_taps = axis_taps(iy, g.kernel_h, g.stride_h, g.pad_top, g.out_h);
    for (std::int64_t ix = 0; ix < g.in_w; ++ix)
      backward_input_pixel(dy_img, w, dx + (r * g.in_w + ix) * C, g, row_taps, col_taps[static_cast<std::size_t>(ix)]);
  }
}

// ---- backward: kernel (and bias) gradient ----

// Accumulates one output pixel's contribution, channels [c_begin, C).
void backward_kernel_pixel(const float* dy_pixel, const float* x_img, float* dw, float* dbias, const ConvGeometry& g,
                           std::int64_t oy, std::int64_t ox, std::int64_t c_begin) {
  const std::int64_t C = g.in_c;
  const std::int64_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
  const std::int64_t ky_lo = std::max<std::int64_t>(0, -iy0), ky_hi = std::min(g.kernel_h, g.in_h - iy0);
  const std::int64_t kx_lo = std::max<std::int64_t>(0, -ix0), kx_hi = std::min(g.kernel_w, g.in_w - ix0);
  for (std::int64_t ky = ky_lo; ky < ky_hi; ++ky)
    for (std::int64_t kx = kx_lo; kx < kx_hi; ++kx) {
      const float* xp = x_img + ((iy0 + ky) * g.in_w + ix0 + kx) * C;
      float* wp = dw + (ky * g.kernel_w + kx) * C;
      std::int64_t c = c_begin;
      for (; c + L <= C; c += L) vstore(wp + c, vfma(vload(dy_pixel + c), vload(xp + c), vload(wp + c)));
      for (; c < C; ++c) wp[c] += dy_pixel[c] * xp[c];
    }
  if (dbias != nullptr) {
    std::int64_t c = c_begin;
    for (; c + L <= C; c += L) vstore(dbias + c, vload(dbias + c) + vload(dy_pixel + c));
    for (; c < C; ++c) dbias[c] += dy_pixel[c];
  }
}

template <int KH, int KW>
void backward_kernel_row_interior(const float* dy_row, const float* x_img, float* dw, float* dbias,
                                  const ConvGeometry& g, std::int64_t oy, std::int64_t ox_lo, std::int64_t ox_hi) {
  const std::int64_t C = g.in_c, sw = g.stride_w;
  const std::int64_t iy0 = oy * g.stride_h - g.pad_top;
  const float* rows[KH];
  for (int ky = 0; ky < KH; ++ky) rows[ky] = x_img + (iy0 + ky) * g.in_w * C;
  std::int64_t c = 0;
  for (; c + L <= C; c += L) {
    V acc[KH * KW];
    for (int t = 0; t < KH * KW; ++t) acc[t] = vbroadcast(0.0f);
    V bacc = vbroadcast(0.0f);
    for (std::int64_t ox = ox_lo; ox < ox_hi; ++ox) {
      const V gv = vload(dy_row + ox * C + c);
      bacc += gv;
      const std::int64_t ix = ox * sw - g.pad_left;
      for (int ky = 0; ky < KH; ++ky)
        for (int kx = 0; kx < KW; ++kx) acc[ky * KW + kx] = vfma(gv, vload(rows[ky] + (ix + kx) * C + c), acc[ky * KW + kx]);
    }
    for (int t = 0; t < KH * KW; ++t) vstore(dw + t * C + c, vload(dw + t * C + c) + acc[t]);
    if (dbias != nullptr) vstore(dbias + c, vload(dbias + c) + bacc);
  }
  if (c < C)
    for (std::int64_t ox = ox_lo; ox < ox_hi; ++ox) backward_kernel_pixel(dy_row + ox * C, x_img, dw, dbias, g, oy, ox, c);
}

void backward_kernel(const float* dy, const float* x, float* dw, float* dbias, const ConvGeometry& g,
                     std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t C = g.in_c;
  const InteriorColumns cols = interior_columns(g);
  const bool fast_kernel = g.kernel_h == 3 && g.kernel_w == 3;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.out_h, oy = r % g.out_h;
    const float* x_img = x + n * g.in_h * g.in_w * C;
    const float* dy_row = dy + r * g.out_w * C;
    const std::int64_t iy0 = oy * g.stride_h - g.pad_top;
    const bool rows_inside = iy0 >= 0 && iy0 + g.kernel_h <= g.in_h;
    if (fast_kernel && rows_inside) {
      for (std::int64_t ox = 0; ox < cols.lo; ++ox) backward_kernel_pixel(dy_row + ox * C, x_img, dw, dbias, g, oy, ox, 0);
      backward_kernel_row_interior<3, 3>(dy_row, x_img, dw, dbias, g, oy, cols.lo, cols.hi);
      for (std::int64_t ox = cols.hi; ox < g.out_w; ++ox)
        backward_kernel_pixel(dy_row + ox * C, x_img, dw, dbias, g, oy, ox, 0);
    } else {
      for (std::int64_t ox = 0; ox < g.out_w; ++ox) backward_kernel_pixel(dy_row + ox * C, x_img, dw, dbias, g, oy, ox, 0);
    }
  }
}

}  // namespace

extern const DepthwiseKernels depthwise_table;
const DepthwiseKernels depthwise_table{forward, backward_input, backward_kernel};

}  // namespace petal::cpu::PETAL_ISA_NS
