// Direct convolution for inputs with few channels (the 3x3/2, 3 -> 32 stem of
// MobileNetV2), compiled once per ISA. With Cin = 3 an im2col/GEMM would copy
// 27-wide rows to run a K = 27 product; here every input value is broadcast
// once and multiplied into register accumulators spanning the output
// channels.
#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/conv/conv_simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);

inline V clamp6(V v) { return vmin(vmax(v, vbroadcast(0.0f)), vbroadcast(6.0f)); }

struct Window {
  std::int64_t iy0, ix0, ky_lo, ky_hi, kx_lo, kx_hi;
};

// NV output-channel vectors starting at co for one pixel.
template <int NV>
void pixel_block(const float* x_img, const float* w, const float* bias, float* out, const ConvGeometry& g,
                 const Window& win, std::int64_t co, bool relu6) {
  const std::int64_t Cin = g.in_c, Cout = g.out_c;
  V acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = bias ? vload(bias + co + j * L) : vbroadcast(0.0f);
  for (std::int64_t ky = win.ky_lo; ky < win.ky_hi; ++ky)
    for (std::int64_t kx = win.kx_lo; kx < win.kx_hi; ++kx) {
      const float* xp = x_img + ((win.iy0 + ky) * g.in_w + win.ix0 + kx) * Cin;
      const float* wp = w + (ky * g.kernel_w + kx) * Cin * Cout + co;
      for (std::int64_t ci = 0; ci < Cin; ++ci) {
        const V xv = vbroadcast(xp[ci]);
        for (int j = 0; j < NV; ++j) acc[j] = vfma(xv, vload(wp + ci * Cout + j * L), acc[j]);
      }
    }
  for (int j = 0; j < NV; ++j) vstore(out + co + j * L, relu6 ? clamp6(acc[j]) : acc[j]);
}

// NP neighbouring output pixels from ox on, whose windows lie inside the
// input, NV output-channel vectors from co on. The kw * Cin inputs under one
// kernel row are contiguous in NHWC, and so are the matching weight rows, so
// each weight vector is loaded once for NP pixels.
// RUN > 0 fixes kw * Cin at compile time (9 for the 3x3 RGB stem), which
// unrolls the inner loop completely.
template <int NP, int NV, int RUN = 0>
void interior_block(const float* x_img, const float* w, const float* bias, float* out_row, const ConvGeometry& g,
                    std::int64_t iy0, std::int64_t ox, std::int64_t co, bool relu6) {
  const std::int64_t cin = g.in_c, cout = g.out_c, step = g.stride_w * cin;
  const std::int64_t run = RUN > 0 ? RUN : g.kernel_w * cin;
  V acc[NP][NV];
  for (int j = 0; j < NV; ++j) {
    const V b = bias ? vload(bias + co + j * L) : vbroadcast(0.0f);
    for (int p = 0; p < NP; ++p) acc[p][j] = b;
  }
  for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
    const float* xr = x_img + ((iy0 + ky) * g.in_w + ox * g.stride_w - g.pad_left) * cin;
    const float* wr = w + ky * run * cout + co;
    for (std::int64_t t = 0; t < run; ++t) {
      V wv[NV];
      for (int j = 0; j < NV; ++j) wv[j] = vload(wr + t * cout + j * L);
      for (int p = 0; p < NP; ++p) {
        const V xb = vbroadcast(xr[p * step + t]);
        for (int j = 0; j < NV; ++j) acc[p][j] = vfma(xb, wv[j], acc[p][j]);
      }
    }
  }
  for (int p = 0; p < NP; ++p)
    for (int j = 0; j < NV; ++j) {
      float* o = out_row + (ox + p) * cout + co + j * L;
      const V v = relu6 ? clamp6(acc[p][j]) : acc[p][j];
      if (g.stream_output) {
        vstream(o, v);
      } else {
        vstore(o, v);
      }
    }
}

// Interior pixels [lo, hi) of a row whose kernel rows all exist: groups of 4
// pixels, then single pixels; output channels in blocks of up to 4 vectors.
template <int NP>
void interior_pixels(const float* x_img, const float* w, const float* bias, float* out_row, const ConvGeometry& g,
                     std::int64_t iy0, std::int64_t ox, bool relu6, std::int64_t cout_vec) {
  std::int64_t co = 0;
  if (g.kernel_w * g.in_c == 9) {
    if constexpr (NP <= 4)
      for (; co + 4 * L <= cout_vec; co += 4 * L) interior_block<NP, 4, 9>(x_img, w, bias, out_row, g, iy0, ox, co, relu6);
    for (; co + 2 * L <= cout_vec; co += 2 * L) interior_block<NP, 2, 9>(x_img, w, bias, out_row, g, iy0, ox, co, relu6);
  }
  if constexpr (NP <= 4)  // NP x 4 accumulators must fit the register file
    for (; co + 4 * L <= cout_vec; co += 4 * L) interior_block<NP, 4>(x_img, w, bias, out_row, g, iy0, ox, co, relu6);
  for (; co + 2 * L <= cout_vec; co += 2 * L) interior_block<NP, 2>(x_img, w, bias, out_row, g, iy0, ox, co, relu6);
  for (; co + L <= cout_vec; co += L) interior_block<NP, 1>(x_img, w, bias, out_row, g, iy0, ox, co, relu6);
}

Window window_at(const ConvGeometry& g, std::int64_t oy, std::int64_t ox) {
  Window win;
  win.iy0 = oy * g.stride_h - g.pad_top, win.ix0 = ox * g.stride_w - g.pad_left;
  win.ky_lo = std::max<std::int64_t>(0, -win.iy0), win.ky_hi = std::min(g.kernel_h, g.in_h - win.iy0);
  win.kx_lo = std::max<std::int64_t>(0, -win.ix0), win.kx_hi = std::min(g.kernel_w, g.in_w - win.ix0);
  return win;
}

// Every output channel of one pixel through the clipped-window loops,
// channels from co_begin on.
void any_pixel(const float* x_img, const float* w, const float* bias, float* out, const ConvGeometry& g,
               const Window& win, bool relu6, std::int64_t co_begin) {
  const std::int64_t Cin = g.in_c, Cout = g.out_c;
  std::int64_t co = co_begin;
  for (; co + 4 * L <= Cout; co += 4 * L) pixel_block<4>(x_img, w, bias, out, g, win, co, relu6);
  for (; co + L <= Cout; co += L) pixel_block<1>(x_img, w, bias, out, g, win, co, relu6);
  for (; co < Cout; ++co) {
    float a = bias ? bias[co] : 0.0f;
    for (std::int64_t ky = win.ky_lo; ky < win.ky_hi; ++ky)
      for (std::int64_t kx = win.kx_lo; kx < win.kx_hi; ++kx)
        for (std::int64_t ci = 0; ci < Cin; ++ci)
          a += x_img[((win.iy0 + ky) * g.in_w + win.ix0 + kx) * Cin + ci] *
               w[((ky * g.kernel_w + kx) * Cin + ci) * Cout + co];
    out[co] = relu6 ? std::min(std::max(a, 0.0f), 6.0f) : a;
  }
}

void forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
             std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t Cin = g.in_c, Cout = g.out_c;
  const std::int64_t cout_vec = Cout / L * L;
  // Output columns whose windows stay inside the input row.
  const std::int64_t lo = std::min((g.pad_left + g.stride_w - 1) / g.stride_w, g.out_w);
  const std::int64_t last_start = g.in_w - g.kernel_w + g.pad_left;
  const std::int64_t hi = last_start < 0 ? lo : std::max(lo, std::min(last_start / g.stride_w + 1, g.out_w));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.out_h, oy = r % g.out_h;
    const float* x_img = x + n * g.in_h * g.in_w * Cin;
    float* out_row = y + r * g.out_w * Cout;
    const std::int64_t iy0 = oy * g.stride_h - g.pad_top;
    const bool rows_inside = iy0 >= 0 && iy0 + g.kernel_h <= g.in_h;
    std::int64_t fast_lo = 0, fast_hi = 0;  // columns done by the interior blocks
    if (rows_inside && cout_vec > 0) {
      fast_lo = lo, fast_hi = hi;
      std::int64_t ox = lo;
      // With 32 vector registers, 8 pixels x 2 vectors keep 16 accumulators
      // in flight (the 3 -> 32 stem); narrower register files take 4 pixels.
      if constexpr (L >= 16)
        if (cout_vec <= 2 * L)
          for (; ox + 8 <= hi; ox += 8) interior_pixels<8>(x_img, w, bias, out_row, g, iy0, ox, relu6, cout_vec);
      for (; ox + 4 <= hi; ox += 4) interior_pixels<4>(x_img, w, bias, out_row, g, iy0, ox, relu6, cout_vec);
      for (; ox < hi; ++ox) interior_pixels<1>(x_img, w, bias, out_row, g, iy0, ox, relu6, cout_vec);
    }
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      const bool done = ox >= fast_lo && ox < fast_hi;
      any_pixel(x_img, w, bias, out_row + ox * Cout, g, window_at(g, oy, ox), relu6, done ? cout_vec : 0);
    }
  }
  if (g.stream_output) vstream_fence();
}

}  // namespace

extern const DirectConvKernels direct_conv_table;
const DirectConvKernels direct_conv_table{forward};

}  // namespace petal::cpu::PETAL_ISA_NS
