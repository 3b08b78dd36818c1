// Plain loops: see reference_conv.hpp. Accumulation in double so that the
// float instantiation is a trustworthy yardstick for the fast kernels.
#include "kernels/cpu/conv/reference_conv.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace petal::cpu {
namespace {

std::int64_t in_index(const ConvGeometry& g, std::int64_t n, std::int64_t iy, std::int64_t ix) {
  return ((n * g.in_h + iy) * g.in_w + ix) * g.in_c;
}
std::int64_t out_index(const ConvGeometry& g, std::int64_t n, std::int64_t oy, std::int64_t ox) {
  return ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
}

// Calls fn(n, oy, ox, ky, kx, iy, ix) for every output pixel and every tap
// that lands inside the input.
template <class Fn>
void for_each_tap(const ConvGeometry& g, Fn&& fn) {
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t oy = 0; oy < g.out_h; ++oy)
      for (std::int64_t ox = 0; ox < g.out_w; ++ox)
        for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const std::int64_t iy = oy * g.stride_h - g.pad_top + ky;
          if (iy < 0 || iy >= g.in_h) continue;
          for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const std::int64_t ix = ox * g.stride_w - g.pad_left + kx;
            if (ix < 0 || ix >= g.in_w) continue;
            fn(n, oy, ox, ky, kx, iy, ix);
          }
        }
}

}  // namespace

template <class T>
void reference_conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  std::vector<double> acc(static_cast<std::size_t>(g.output_pixels() * g.out_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
    double* out = &acc[static_cast<std::size_t>(out_index(g, n, oy, ox))];
    const T* in = x + in_index(g, n, iy, ix);
    const T* wk = w + (ky * g.kernel_w + kx) * g.in_c * g.out_c;
    for (std::int64_t ci = 0; ci < g.in_c; ++ci)
      for (std::int64_t co = 0; co < g.out_c; ++co) out[co] += double(in[ci]) * double(wk[ci * g.out_c + co]);
  });
  for (std::int64_t p = 0; p < g.output_pixels(); ++p)
    for (std::int64_t co = 0; co < g.out_c; ++co)
      y[p * g.out_c + co] = T(acc[static_cast<std::size_t>(p * g.out_c + co)] + (bias ? double(bias[co]) : 0.0));
}

template <class T>
void reference_conv2d_backward_input(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  std::vector<double> acc(static_cast<std::size_t>(g.input_pixels() * g.in_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
    double* out = &acc[static_cast<std::size_t>(in_index(g, n, iy, ix))];
    const T* grad = dy + out_index(g, n, oy, ox);
    const T* wk = w + (ky * g.kernel_w + kx) * g.in_c * g.out_c;
    for (std::int64_t ci = 0; ci < g.in_c; ++ci)
      for (std::int64_t co = 0; co < g.out_c; ++co) out[ci] += double(grad[co]) * double(wk[ci * g.out_c + co]);
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dx[i] = T(acc[i]);
}

template <class T>
void reference_conv2d_backward_kernel(const T* dy, const T* x, T* dw, const ConvGeometry& g) {
  std::vector<double> acc(static_cast<std::size_t>(g.taps() * g.in_c * g.out_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
    const T* grad = dy + out_index(g, n, oy, ox);
    const T* in = x + in_index(g, n, iy, ix);
    double* out = &acc[static_cast<std::size_t>((ky * g.kernel_w + kx) * g.in_c * g.out_c)];
    for (std::int64_t ci = 0; ci < g.in_c; ++ci)
      for (std::int64_t co = 0; co < g.out_c; ++co) out[ci * g.out_c + co] += double(in[ci]) * double(grad[co]);
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dw[i] = T(acc[i]);
}

template <class T>
void reference_depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const std::int64_t m = g.out_c / g.in_c;
  std::vector<double> acc(static_cast<std::size_t>(g.output_pixels() * g.out_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
    double* out = &acc[static_cast<std::size_t>(out_index(g, n, oy, ox))];
    const T* in = x + in_index(g, n, iy, ix);
    const T* wk = w + (ky * g.kernel_w + kx) * g.out_c;
    for (std::int64_t oc = 0; oc < g.out_c; ++oc) out[oc] += double(in[oc / m]) * double(wk[oc]);
  });
  for (std::int64_t p = 0; p < g.output_pixels(); ++p)
    for (std::int64_t oc = 0; oc < g.out_c; ++oc)
      y[p * g.out_c + oc] = T(acc[static_cast<std::size_t>(p * g.out_c + oc)] + (bias ? double(bias[oc]) : 0.0));
}

template <class T>
void reference_depthwise_backward_input(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  const std::int64_t m = g.out_c / g.in_c;
  std::vector<double> acc(static_cast<std::size_t>(g.input_pixels() * g.in_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
    double* out = &acc[static_cast<std::size_t>(in_index(g, n, iy, ix))];
    const T* grad = dy + out_index(g, n, oy, ox);
    const T* wk = w + (ky * g.kernel_w + kx) * g.out_c;
    for (std::int64_t oc = 0; oc < g.out_c; ++oc) out[oc / m] += double(grad[oc]) * double(wk[oc]);
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dx[i] = T(acc[i]);
}

template <class T>
void reference_depthwise_backward_kernel(const T* dy, const T* x, T* dw, const ConvGeometry& g) {
  const std::int64_t m = g.out_c / g.in_c;
  std::vector<double> acc(static_cast<std::size_t>(g.taps() * g.out_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
    const T* grad = dy + out_index(g, n, oy, ox);
    const T* in = x + in_index(g, n, iy, ix);
    double* out = &acc[static_cast<std::size_t>((ky * g.kernel_w + kx) * g.out_c)];
    for (std::int64_t oc = 0; oc < g.out_c; ++oc) out[oc] += double(in[oc / m]) * double(grad[oc]);
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dw[i] = T(acc[i]);
}

template <class T>
void reference_channel_sum(const T* x, std::int64_t rows, std::int64_t channels, T* out) {
  for (std::int64_t c = 0; c < channels; ++c) {
    double s = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) s += double(x[r * channels + c]);
    out[c] = T(s);
  }
}

template <class T>
void reference_batch_norm_training(const T* x, const T* gamma, const T* beta, std::int64_t rows, std::int64_t channels,
                                   double epsilon, bool relu6, T* y, T* mean, T* biased_variance) {
  for (std::int64_t c = 0; c < channels; ++c) {
    double s = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) s += double(x[r * channels + c]);
    const double mu = s / double(rows);
    double ss = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const double d = double(x[r * channels + c]) - mu;
      ss += d * d;
    }
    const double var = ss / double(rows);
    const double inv_std = 1.0 / std::sqrt(var + epsilon);
    for (std::int64_t r = 0; r < rows; ++r) {
      double v = (double(x[r * channels + c]) - mu) * inv_std * double(gamma[c]) + double(beta[c]);
      if (relu6) v = std::min(std::max(v, 0.0), 6.0);
      y[r * channels + c] = T(v);
    }
    mean[c] = T(mu);
    biased_variance[c] = T(var);
  }
}

template <class T>
void reference_batch_norm_backward(const T* dy, const T* x, const T* gamma, const T* beta, const T* mean,
                                   const T* biased_variance, std::int64_t rows, std::int64_t channels, double epsilon,
                                   bool relu6, T* dx, T* dgamma, T* dbeta) {
  std::vector<double> g(static_cast<std::size_t>(rows));
  for (std::int64_t c = 0; c < channels; ++c) {
    const double mu = double(mean[c]);
    const double inv_std = 1.0 / std::sqrt(double(biased_variance[c]) + epsilon);
    double sum_g = 0.0, sum_g_xhat = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const double xhat = (double(x[r * channels + c]) - mu) * inv_std;
      double grad = double(dy[r * channels + c]);
      if (relu6) {
        const double pre = xhat * double(gamma[c]) + double(beta[c]);
        if (!(pre > 0.0 && pre < 6.0)) grad = 0.0;
      }
      g[static_cast<std::size_t>(r)] = grad;
      sum_g += grad;
      sum_g_xhat += grad * xhat;
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      const double xhat = (double(x[r * channels + c]) - mu) * inv_std;
      dx[r * channels + c] = T(double(gamma[c]) * inv_std / double(rows) *
                               (double(rows) * g[static_cast<std::size_t>(r)] - sum_g - xhat * sum_g_xhat));
    }
    dgamma[c] = T(sum_g_xhat);
    dbeta[c] = T(sum_g);
  }
}

template <class T>
void reference_avg_pool_forward(const T* x, T* y, const ConvGeometry& g) {
  std::vector<double> acc(static_cast<std::size_t>(g.output_pixels() * g.out_c), 0.0);
  std::vector<std::int64_t> count(static_cast<std::size_t>(g.output_pixels()), 0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto, auto, auto iy, auto ix) {
    const std::int64_t o = out_index(g, n, oy, ox);
    const T* in = x + in_index(g, n, iy, ix);
    for (std::int64_t c = 0; c < g.out_c; ++c) acc[static_cast<std::size_t>(o + c)] += double(in[c]);
    ++count[static_cast<std::size_t>(o / g.out_c)];
  });
  for (std::int64_t p = 0; p < g.output_pixels(); ++p)
    for (std::int64_t c = 0; c < g.out_c; ++c)
      y[p * g.out_c + c] = T(acc[static_cast<std::size_t>(p * g.out_c + c)] / double(std::max<std::int64_t>(count[static_cast<std::size_t>(p)], 1)));
}

template <class T>
void reference_avg_pool_backward(const T* dy, T* dx, const ConvGeometry& g) {
  std::vector<std::int64_t> count(static_cast<std::size_t>(g.output_pixels()), 0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto, auto, auto, auto) {
    ++count[static_cast<std::size_t>(out_index(g, n, oy, ox) / g.out_c)];
  });
  std::vector<double> acc(static_cast<std::size_t>(g.input_pixels() * g.in_c), 0.0);
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto, auto, auto iy, auto ix) {
    const std::int64_t o = out_index(g, n, oy, ox);
    const double inv = 1.0 / double(count[static_cast<std::size_t>(o / g.out_c)]);
    double* out = &acc[static_cast<std::size_t>(in_index(g, n, iy, ix))];
    for (std::int64_t c = 0; c < g.in_c; ++c) out[c] += double(dy[o + c]) * inv;
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dx[i] = T(acc[i]);
}

template <class T>
void reference_max_pool_forward(const T* x, T* y, const ConvGeometry& g) {
  std::fill(y, y + g.output_pixels() * g.out_c, -std::numeric_limits<T>::infinity());
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto, auto, auto iy, auto ix) {
    T* out = y + out_index(g, n, oy, ox);
    const T* in = x + in_index(g, n, iy, ix);
    for (std::int64_t c = 0; c < g.out_c; ++c) out[c] = std::max(out[c], in[c]);
  });
}

template <class T>
void reference_max_pool_backward(const T* dy, const T* x, T* dx, const ConvGeometry& g) {
  std::fill(dx, dx + g.input_pixels() * g.in_c, T(0));
  const std::int64_t c_count = g.out_c;
  // Index of the first maximum of every output element, then scatter.
  std::vector<std::int64_t> arg(static_cast<std::size_t>(g.output_pixels() * c_count), -1);
  std::vector<T> best(arg.size(), -std::numeric_limits<T>::infinity());
  for_each_tap(g, [&](auto n, auto oy, auto ox, auto, auto, auto iy, auto ix) {
    const std::int64_t o = out_index(g, n, oy, ox);
    const std::int64_t i = in_index(g, n, iy, ix);
    for (std::int64_t c = 0; c < c_count; ++c) {
      const std::size_t k = static_cast<std::size_t>(o + c);
      if (arg[k] < 0 || x[i + c] > best[k]) {
        best[k] = x[i + c];
        arg[k] = i + c;
      }
    }
  });
  for (std::size_t k = 0; k < arg.size(); ++k)
    if (arg[k] >= 0) dx[arg[k]] += dy[k];
}

#define PETAL_INSTANTIATE_REFERENCE(T)                                                                             \
  template void reference_conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvGeometry&);                \
  template void reference_conv2d_backward_input<T>(const T*, const T*, T*, const ConvGeometry&);                   \
  template void reference_conv2d_backward_kernel<T>(const T*, const T*, T*, const ConvGeometry&);                  \
  template void reference_depthwise_forward<T>(const T*, const T*, const T*, T*, const ConvGeometry&);             \
  template void reference_depthwise_backward_input<T>(const T*, const T*, T*, const ConvGeometry&);                \
  template void reference_depthwise_backward_kernel<T>(const T*, const T*, T*, const ConvGeometry&);               \
  template void reference_channel_sum<T>(const T*, std::int64_t, std::int64_t, T*);                                \
  template void reference_batch_norm_training<T>(const T*, const T*, const T*, std::int64_t, std::int64_t, double, \
                                                 bool, T*, T*, T*);                                                \
  template void reference_batch_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*,       \
                                                 std::int64_t, std::int64_t, double, bool, T*, T*, T*);            \
  template void reference_avg_pool_forward<T>(const T*, T*, const ConvGeometry&);                                  \
  template void reference_avg_pool_backward<T>(const T*, T*, const ConvGeometry&);                                 \
  template void reference_max_pool_forward<T>(const T*, T*, const ConvGeometry&);                                  \
  template void reference_max_pool_backward<T>(const T*, const T*, T*, const ConvGeometry&);

PETAL_INSTANTIATE_REFERENCE(float)
PETAL_INSTANTIATE_REFERENCE(double)
#undef PETAL_INSTANTIATE_REFERENCE

}  // namespace petal::cpu
