// Per-channel kernels (batch norm statistics, affine + ReLU6, batch-norm
// backward, bias sums, the inference fold), compiled once per ISA. Each walks the [rows, C] data
// as one flat run in steps of `period` (a multiple of C and of the vector
// width) so that narrow rows such as C = 24 still use whole vectors; the
// per-channel parameters arrive expanded to the period. These layers are
// bound by memory traffic, so each is a single streaming pass.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/conv/conv_simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using V = Vec<float>;
constexpr std::int64_t L = static_cast<std::int64_t>(kLanes<float>);

inline float clamp6(float v) { return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v); }
inline V clamp6(V v) { return vmin(vmax(v, vbroadcast(0.0f)), vbroadcast(6.0f)); }
// 1 where 0 < z < 6, else 0.
inline float relu6_mask(float z) { return (z > 0.0f && z < 6.0f) ? 1.0f : 0.0f; }
inline V relu6_mask(V z) {
  const V one = vbroadcast(1.0f), zero = vbroadcast(0.0f);
  return vselect_gt(z, zero, vselect_gt(vbroadcast(6.0f), z, one, zero), zero);
}

void shifted_sums(const float* x, std::int64_t count, std::int64_t period, const float* shift, float* sum,
                  float* sumsq) {
  std::int64_t i = 0;
  for (; i + period <= count; i += period) {
    const float* row = x + i;
    for (std::int64_t p = 0; p < period; p += L) {
      const V d = vload(row + p) - vload(shift + p);
      vstore(sum + p, vload(sum + p) + d);
      vstore(sumsq + p, vfma(d, d, vload(sumsq + p)));
    }
  }
  for (std::int64_t p = 0; i + p < count; ++p) {
    const float d = x[i + p] - shift[p];
    sum[p] += d;
    sumsq[p] += d * d;
  }
}

void sums(const float* x, std::int64_t count, std::int64_t period, float* acc) {
  std::int64_t i = 0;
  for (; i + period <= count; i += period)
    for (std::int64_t p = 0; p < period; p += L) vstore(acc + p, vload(acc + p) + vload(x + i + p));
  for (std::int64_t p = 0; i + p < count; ++p) acc[p] += x[i + p];
}

// A vector store, or with kStream a non-temporal one.
template <bool kStream>
inline void put(float* p, V v) {
  if constexpr (kStream) {
    vstream(p, v);
  } else {
    vstore(p, v);
  }
}

template <bool kRelu6, bool kScale, bool kStream>
void affine_impl(const float* x, std::int64_t count, std::int64_t period, const float* scale, const float* shift,
                 float* y) {
  std::int64_t i = 0;
  for (; i + period <= count; i += period) {
    for (std::int64_t p = 0; p < period; p += L) {
      V v = kScale ? vfma(vload(x + i + p), vload(scale + p), vload(shift + p)) : vload(x + i + p) + vload(shift + p);
      if constexpr (kRelu6) v = clamp6(v);
      put<kStream>(y + i + p, v);
    }
  }
  for (std::int64_t p = 0; i + p < count; ++p) {
    float v = kScale ? sfma(x[i + p], scale[p], shift[p]) : x[i + p] + shift[p];
    y[i + p] = kRelu6 ? clamp6(v) : v;
  }
}

template <bool kStream>
void affine_any(const float* x, std::int64_t count, std::int64_t period, const float* scale, const float* shift,
                float* y, bool relu6) {
  if (scale != nullptr) {
    relu6 ? affine_impl<true, true, kStream>(x, count, period, scale, shift, y)
          : affine_impl<false, true, kStream>(x, count, period, scale, shift, y);
  } else {
    relu6 ? affine_impl<true, false, kStream>(x, count, period, scale, shift, y)
          : affine_impl<false, false, kStream>(x, count, period, scale, shift, y);
  }
}

void affine(const float* x, std::int64_t count, std::int64_t period, const float* scale, const float* shift, float* y,
            bool relu6, bool stream) {
  if (stream) {
    affine_any<true>(x, count, period, scale, shift, y, relu6);
    vstream_fence();
  } else {
    affine_any<false>(x, count, period, scale, shift, y, relu6);
  }
}

// The batch norm backward's gradient dy, zeroed where the fused ReLU6
// clamped: its mask recomputed from the pre-activation x * scale + shift
// (vector and scalar forms, the same operations in the same order).
template <bool kRelu6>
inline V masked_grad(V dy, V x, V scale, V shift) {
  if constexpr (kRelu6) return dy * relu6_mask(vfma(x, scale, shift));
  return dy;
}
template <bool kRelu6>
inline float masked_grad(float dy, float x, float scale, float shift) {
  if constexpr (kRelu6) return dy * relu6_mask(sfma(x, scale, shift));
  return dy;
}

template <bool kRelu6>
void bn_backward_sums_impl(const float* dy, const float* x, std::int64_t count, std::int64_t period,
                           const float* scale, const float* shift, const float* mean, float* sum_g, float* sum_gxc) {
  std::int64_t i = 0;
  for (; i + period <= count; i += period) {
    for (std::int64_t p = 0; p < period; p += L) {
      const V xv = vload(x + i + p);
      const V g = masked_grad<kRelu6>(vload(dy + i + p), xv, vload(scale + p), vload(shift + p));
      vstore(sum_g + p, vload(sum_g + p) + g);
      vstore(sum_gxc + p, vfma(g, xv - vload(mean + p), vload(sum_gxc + p)));
    }
  }
  for (std::int64_t p = 0; i + p < count; ++p) {
    const float xv = x[i + p];
    const float g = masked_grad<kRelu6>(dy[i + p], xv, scale[p], shift[p]);
    sum_g[p] += g;
    sum_gxc[p] += g * (xv - mean[p]);
  }
}

void bn_backward_sums(const float* dy, const float* x, std::int64_t count, std::int64_t period, const float* scale,
                      const float* shift, const float* mean, bool relu6, float* sum_g, float* sum_gxc) {
  relu6 ? bn_backward_sums_impl<true>(dy, x, count, period, scale, shift, mean, sum_g, sum_gxc)
        : bn_backward_sums_impl<false>(dy, x, count, period, scale, shift, mean, sum_g, sum_gxc);
}

template <bool kRelu6, bool kStream>
void bn_backward_apply_impl(const float* dy, const float* x, std::int64_t count, std::int64_t period,
                            const float* scale, const float* shift, const float* k_g, const float* k_x,
                            const float* k_c, float* dx) {
  std::int64_t i = 0;
  for (; i + period <= count; i += period) {
    for (std::int64_t p = 0; p < period; p += L) {
      const V xv = vload(x + i + p);
      const V g = masked_grad<kRelu6>(vload(dy + i + p), xv, vload(scale + p), vload(shift + p));
      put<kStream>(dx + i + p, vfma(g, vload(k_g + p), vfma(xv, vload(k_x + p), vload(k_c + p))));
    }
  }
  for (std::int64_t p = 0; i + p < count; ++p) {
    const float xv = x[i + p];
    const float g = masked_grad<kRelu6>(dy[i + p], xv, scale[p], shift[p]);
    dx[i + p] = g * k_g[p] + (xv * k_x[p] + k_c[p]);
  }
}

void bn_backward_apply(const float* dy, const float* x, std::int64_t count, std::int64_t period, const float* scale,
                       const float* shift, bool relu6, const float* k_g, const float* k_x, const float* k_c,
                       float* dx, bool stream) {
  if (stream) {
    relu6 ? bn_backward_apply_impl<true, true>(dy, x, count, period, scale, shift, k_g, k_x, k_c, dx)
          : bn_backward_apply_impl<false, true>(dy, x, count, period, scale, shift, k_g, k_x, k_c, dx);
    vstream_fence();
  } else {
    relu6 ? bn_backward_apply_impl<true, false>(dy, x, count, period, scale, shift, k_g, k_x, k_c, dx)
          : bn_backward_apply_impl<false, false>(dy, x, count, period, scale, shift, k_g, k_x, k_c, dx);
  }
}

// Vectorised in double: the scalar loop's sqrt and division (with errno
// checks) took 5 ns a channel, and inference refolds all 52 of MobileNetV2's
// batch norms (17,000 channels) on every call, on one thread.
void fold_batch_norm(const float* gamma, const float* beta, const float* mean, const float* var,
                     std::int64_t channels, double epsilon, float* scale, float* shift) {
  using D = Vec<double>;
  constexpr std::int64_t kD = static_cast<std::int64_t>(D::size);
  alignas(64) double g[kD], b[kD], m[kD], v[kD], s_out[kD], t_out[kD];
  const D eps = vbroadcast(epsilon);
  std::int64_t c = 0;
  for (; c + kD <= channels; c += kD) {
    for (std::int64_t i = 0; i < kD; ++i) {
      g[i] = gamma[c + i];
      b[i] = beta[c + i];
      m[i] = mean[c + i];
      v[i] = var[c + i];
    }
    const D s = vload(g) / vsqrt(vload(v) + eps);
    vstore(s_out, s);
    vstore(t_out, vload(b) - vload(m) * s);
    for (std::int64_t i = 0; i < kD; ++i) {
      scale[c + i] = static_cast<float>(s_out[i]);
      shift[c + i] = static_cast<float>(t_out[i]);
    }
  }
  for (; c < channels; ++c) {
    const double s = static_cast<double>(gamma[c]) / std::sqrt(static_cast<double>(var[c]) + epsilon);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(static_cast<double>(beta[c]) - static_cast<double>(mean[c]) * s);
  }
}

}  // namespace

extern const ChannelKernels channel_table;
const ChannelKernels channel_table{L,          shifted_sums,      sums, affine, bn_backward_sums, bn_backward_apply,
                                   fold_batch_norm};

}  // namespace petal::cpu::PETAL_ISA_NS
