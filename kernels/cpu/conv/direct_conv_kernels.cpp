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

void forward(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g, bool relu6,
             std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t Cin = g.in_c, Cout = g.out_c;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t n = r / g.out_h, oy = r % g.out_h;
    const float* x_img = x + n * g.in_h * g.in_w * Cin;
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      Window win;
      win.iy0 = oy * g.stride_h - g.pad_top, win.ix0 = ox * g.stride_w - g.pad_left;
      win.ky_lo = std::max<std::int64_t>(0, -win.iy0), win.ky_hi = std::min(g.kernel_h, g.in_h - win.iy0);
      win.kx_lo = std::max<std::int64_t>(0, -win.ix0), win.kx_hi = std::min(g.kernel_w, g.in_w - win.ix0);
      float* out = y + (r * g.out_w + ox) * Cout;
      std::int64_t co = 0;
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
  }
}

}  // namespace

extern const DirectConvKernels direct_conv_table;
const DirectConvKernels direct_conv_table{forward};

}  // namespace petal::cpu::PETAL_ISA_NS
