// Registry entries of the convolution family (NHWC): Conv2D and
// DepthwiseConv2D forward (bias, ReLU6) and both gradients, pooling and
// padding with their gradients, batch norm (training, backward, inference
// affine), the fused conv + batch norm ops and the inverted-residual block's
// inference op. References are plain double
// loops over every tap of every window, independent of kernels/cpu/conv.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/conv_functions.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {
namespace {

using ops::ConvPadding;

struct ConvShape {
  std::int64_t n, h, w, c;   // input
  std::int64_t kh, kw;       // window
  std::int64_t out_or_mult;  // Conv2D: output channels; depthwise: multiplier
  std::int64_t sh, sw;
  ConvPadding padding;
};

struct Geometry {
  std::int64_t n, h, w, c, kh, kw, oh, ow, oc, sh, sw, pad_top, pad_left;
  bool depthwise;
  std::int64_t multiplier;
};

Geometry geometry_of(const ConvShape& s, bool depthwise) {
  const ops::Conv2dWindow win = ops::conv2d_window(s.h, s.w, s.kh, s.kw, s.sh, s.sw, s.padding, "registry");
  Geometry g{};
  g.n = s.n, g.h = s.h, g.w = s.w, g.c = s.c, g.kh = s.kh, g.kw = s.kw, g.sh = s.sh, g.sw = s.sw;
  g.pad_top = win.pad_top, g.pad_left = win.pad_left;
  g.oh = (s.h + win.pad_top + win.pad_bottom - s.kh) / s.sh + 1;
  g.ow = (s.w + win.pad_left + win.pad_right - s.kw) / s.sw + 1;
  g.depthwise = depthwise;
  g.multiplier = depthwise ? s.out_or_mult : 1;
  g.oc = depthwise ? s.c * s.out_or_mult : s.out_or_mult;
  return g;
}

ops::Conv2dWindow window_of(const ConvShape& s) {
  return ops::conv2d_window(s.h, s.w, s.kh, s.kw, s.sh, s.sw, s.padding, "registry");
}

// Calls tap(output index, input index, kernel index) for every in-bounds tap
// of every output element (padding contributes nothing).
template <class Tap>
void for_each_tap(const Geometry& g, Tap&& tap) {
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t oc = 0; oc < g.oc; ++oc) {
          const std::int64_t out = ((n * g.oh + oy) * g.ow + ox) * g.oc + oc;
          for (std::int64_t i = 0; i < g.kh; ++i) {
            const std::int64_t y = oy * g.sh - g.pad_top + i;
            if (y < 0 || y >= g.h) continue;
            for (std::int64_t j = 0; j < g.kw; ++j) {
              const std::int64_t x = ox * g.sw - g.pad_left + j;
              if (x < 0 || x >= g.w) continue;
              const std::int64_t pixel = ((n * g.h + y) * g.w + x) * g.c;
              if (g.depthwise) {
                const std::int64_t ci = oc / g.multiplier, m = oc % g.multiplier;
                tap(out, pixel + ci, ((i * g.kw + j) * g.c + ci) * g.multiplier + m);
              } else {
                for (std::int64_t ci = 0; ci < g.c; ++ci) tap(out, pixel + ci, ((i * g.kw + j) * g.c + ci) * g.oc + oc);
              }
            }
          }
        }
}

Shape output_shape(const Geometry& g) { return {g.n, g.oh, g.ow, g.oc}; }
Shape kernel_shape(const Geometry& g) {
  return g.depthwise ? Shape{g.kh, g.kw, g.c, g.multiplier} : Shape{g.kh, g.kw, g.c, g.oc};
}

double relu6(double v) { return std::min(std::max(v, 0.0), 6.0); }

// conv(x, kernel) + bias (bias may be absent), ReLU6 when asked; the error
// scale of each output is sum |x * w| + |bias|.
Reference conv_forward(const Geometry& g, const Tensor& x, const Tensor& kernel, const Tensor* bias, bool clamp) {
  const std::vector<double> vx = x.to_vector<double>(), vk = kernel.to_vector<double>();
  Reference r{output_shape(g), std::vector<double>(shape_numel(output_shape(g)), 0.0), {}};
  r.error_scale.assign(r.values.size(), 0.0);
  for_each_tap(g, [&](std::int64_t o, std::int64_t i, std::int64_t k) {
    r.values[o] += vx[i] * vk[k];
    r.error_scale[o] += std::abs(vx[i] * vk[k]);
  });
  if (bias) {
    const std::vector<double> vb = bias->to_vector<double>();
    for (std::size_t o = 0; o < r.values.size(); ++o) {
      r.values[o] += vb[o % g.oc];
      r.error_scale[o] += std::abs(vb[o % g.oc]);
    }
  }
  if (clamp)
    for (double& v : r.values) v = relu6(v);
  return r;
}

Reference conv_backward_input(const Geometry& g, const Tensor& grad, const Tensor& kernel) {
  const std::vector<double> vg = grad.to_vector<double>(), vk = kernel.to_vector<double>();
  const Shape shape{g.n, g.h, g.w, g.c};
  Reference r{shape, std::vector<double>(shape_numel(shape), 0.0), std::vector<double>(shape_numel(shape), 0.0)};
  for_each_tap(g, [&](std::int64_t o, std::int64_t i, std::int64_t k) {
    r.values[i] += vg[o] * vk[k];
    r.error_scale[i] += std::abs(vg[o] * vk[k]);
  });
  return r;
}

Reference conv_backward_kernel(const Geometry& g, const Tensor& grad, const Tensor& x) {
  const std::vector<double> vg = grad.to_vector<double>(), vx = x.to_vector<double>();
  const Shape shape = kernel_shape(g);
  Reference r{shape, std::vector<double>(shape_numel(shape), 0.0), std::vector<double>(shape_numel(shape), 0.0)};
  for_each_tap(g, [&](std::int64_t o, std::int64_t i, std::int64_t k) {
    r.values[k] += vg[o] * vx[i];
    r.error_scale[k] += std::abs(vg[o] * vx[i]);
  });
  return r;
}

// Sum over all but the last axis.
Reference channel_sum(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  const std::int64_t c = t.shape().back();
  Reference r{{c}, std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  for (std::size_t i = 0; i < v.size(); ++i) {
    r.values[i % c] += v[i];
    r.error_scale[i % c] += std::abs(v[i]);
  }
  return r;
}

OpCase conv_case(const char* name, const ConvShape& s, std::string attributes) {
  OpCase c;
  c.family = "conv";
  c.name = name;
  c.attributes = std::move(attributes) + (s.padding == ConvPadding::Same ? ", same" : ", valid") + ", stride " +
                 std::to_string(s.sh) + "x" + std::to_string(s.sw);
  // Sums of many products: errors scale with sum |term| (Reference::error_scale).
  c.rtol_float32 = 2e-6;
  c.rtol_float64 = 1e-13;
  c.atol_float32 = c.atol_float64 = 1e-12;
  // A small convolution is cheap to differentiate numerically.
  c.gradcheck_max_elements = 1500;
  return c;
}

void add_convolution(std::vector<OpCase>& out, const ConvShape& s, bool depthwise) {
  const Geometry g = geometry_of(s, depthwise);
  const ops::Conv2dWindow win = window_of(s);
  const ag::Conv2dOptions options{s.sh, s.sw, s.padding};
  const InputSpec x({s.n, s.h, s.w, s.c}), kernel(kernel_shape(g)), bias({g.oc}), grad(output_shape(g));
  const std::string kind = depthwise ? "multiplier " + std::to_string(g.multiplier) : std::to_string(g.oc) + " filters";
  const char* forward_name = depthwise ? "depthwise_conv2d" : "conv2d";
  auto run = [depthwise, win](const Tensor& in, const Tensor& k, const Tensor& b, bool clamp) {
    return depthwise ? ops::depthwise_conv2d(in, k, b, win, clamp) : ops::conv2d(in, k, b, win, clamp);
  };

  OpCase forward = conv_case(forward_name, s, kind + ", bias");
  forward.inputs = {x, kernel, bias};
  forward.forward = [run](const Inputs& in) { return run(in[0], in[1], in[2], false); };
  forward.reference = [g](const Inputs& in) { return conv_forward(g, in[0], in[1], &in[2], false); };
  forward.differentiable = [depthwise, options](const std::vector<ag::Variable>& v) {
    return depthwise ? ag::depthwise_conv2d(v[0], v[1], v[2], options) : ag::conv2d(v[0], v[1], v[2], options);
  };
  out.push_back(forward);

  OpCase clamped = conv_case(forward_name, s, kind + ", no bias, relu6");
  clamped.inputs = {x.viewed(Layout::EveryOther), kernel};
  clamped.inputs[0].high = 4.0;  // some outputs above 6
  clamped.forward = [run](const Inputs& in) { return run(in[0], in[1], Tensor(), true); };
  clamped.reference = [g](const Inputs& in) { return conv_forward(g, in[0], in[1], nullptr, true); };
  out.push_back(clamped);

  OpCase backward_input = conv_case(depthwise ? "depthwise_conv2d_backward_input" : "conv2d_backward_input", s, kind);
  backward_input.inputs = {grad, kernel};
  backward_input.forward = [depthwise, win, s](const Inputs& in) {
    const Shape input{s.n, s.h, s.w, s.c};
    return depthwise ? ops::depthwise_conv2d_backward_input(in[0], in[1], input, win)
                     : ops::conv2d_backward_input(in[0], in[1], input, win);
  };
  backward_input.reference = [g](const Inputs& in) { return conv_backward_input(g, in[0], in[1]); };
  out.push_back(backward_input);

  OpCase backward_kernel = conv_case(depthwise ? "depthwise_conv2d_backward_kernel" : "conv2d_backward_kernel", s, kind);
  backward_kernel.inputs = {grad, x};
  backward_kernel.forward = [depthwise, win, g](const Inputs& in) {
    return depthwise ? ops::depthwise_conv2d_backward_kernel(in[0], in[1], kernel_shape(g), win)
                     : ops::conv2d_backward_kernel(in[0], in[1], kernel_shape(g), win);
  };
  backward_kernel.reference = [g](const Inputs& in) { return conv_backward_kernel(g, in[0], in[1]); };
  out.push_back(backward_kernel);

  OpCase backward_bias = conv_case(depthwise ? "depthwise_conv2d_backward_kernel" : "conv2d_backward_kernel", s,
                                   kind + ", bias gradient");
  backward_bias.inputs = {grad, x};
  backward_bias.forward = [depthwise, win, g](const Inputs& in) {
    Tensor grad_bias;
    if (depthwise) ops::depthwise_conv2d_backward_kernel(in[0], in[1], kernel_shape(g), win, &grad_bias);
    else ops::conv2d_backward_kernel(in[0], in[1], kernel_shape(g), win, &grad_bias);
    return grad_bias;
  };
  backward_bias.reference = [](const Inputs& in) { return channel_sum(in[0]); };
  out.push_back(backward_bias);
}

// ---- pooling and padding ----

enum class Pool { Average, Max };

// Per output element the in-bounds input indices of its window.
std::vector<std::vector<std::int64_t>> pool_windows(const Geometry& g) {
  std::vector<std::vector<std::int64_t>> windows(g.n * g.oh * g.ow * g.oc);
  for_each_tap(g, [&](std::int64_t o, std::int64_t i, std::int64_t) { windows[o].push_back(i); });
  return windows;
}

void add_pooling(std::vector<OpCase>& out, const ConvShape& s, Pool pool) {
  const Geometry g = geometry_of(ConvShape{s.n, s.h, s.w, s.c, s.kh, s.kw, 1, s.sh, s.sw, s.padding}, true);
  const ops::Conv2dWindow win = window_of(s);
  const ag::Conv2dOptions options{s.sh, s.sw, s.padding};
  const std::int64_t ph = s.kh, pw = s.kw;
  const std::string pool_size = "pool " + std::to_string(ph) + "x" + std::to_string(pw);
  const bool is_max = pool == Pool::Max;

  OpCase forward = conv_case(is_max ? "max_pool2d" : "average_pool2d", s, pool_size);
  forward.inputs = {InputSpec({s.n, s.h, s.w, s.c})};
  forward.forward = [=](const Inputs& in) {
    return is_max ? ops::max_pool2d(in[0], ph, pw, win) : ops::average_pool2d(in[0], ph, pw, win);
  };
  forward.reference = [g, is_max](const Inputs& in) {
    const std::vector<double> v = in[0].to_vector<double>();
    Reference r{output_shape(g), {}, {}};
    for (const auto& window : pool_windows(g)) {
      double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
      for (std::int64_t i : window) acc = is_max ? std::max(acc, v[i]) : acc + v[i];
      r.values.push_back(is_max ? acc : acc / static_cast<double>(window.size()));
    }
    return r;
  };
  forward.differentiable = [=](const std::vector<ag::Variable>& v) {
    return is_max ? ag::max_pool2d(v[0], ph, pw, options) : ag::average_pool2d(v[0], ph, pw, options);
  };
  if (is_max) forward.exact();
  out.push_back(forward);

  OpCase backward = conv_case(is_max ? "max_pool2d_backward" : "average_pool2d_backward", s, pool_size);
  backward.inputs = {InputSpec(output_shape(g)), InputSpec({s.n, s.h, s.w, s.c})};
  backward.forward = [=](const Inputs& in) {
    return is_max ? ops::max_pool2d_backward(in[0], in[1], ph, pw, win)
                  : ops::average_pool2d_backward(in[0], in[1].shape(), ph, pw, win);
  };
  backward.reference = [g, is_max](const Inputs& in) {
    const std::vector<double> grad = in[0].to_vector<double>(), x = in[1].to_vector<double>();
    Reference r{in[1].shape(), std::vector<double>(x.size(), 0.0), std::vector<double>(x.size(), 0.0)};
    const auto windows = pool_windows(g);
    for (std::size_t o = 0; o < windows.size(); ++o) {
      if (is_max) {  // the first maximum of the window takes the gradient
        std::int64_t best = windows[o][0];
        for (std::int64_t i : windows[o])
          if (x[i] > x[best]) best = i;
        r.values[best] += grad[o];
        r.error_scale[best] += std::abs(grad[o]);
      } else {
        for (std::int64_t i : windows[o]) {
          r.values[i] += grad[o] / static_cast<double>(windows[o].size());
          r.error_scale[i] += std::abs(grad[o]) / static_cast<double>(windows[o].size());
        }
      }
    }
    return r;
  };
  backward.rtol_float32 = 1e-5;
  out.push_back(backward);
}

// ---- batch norm over the last axis ----

struct ChannelStats {
  std::vector<double> mean, variance;  // biased variance
};

ChannelStats channel_stats(const std::vector<double>& x, std::int64_t c) {
  const std::int64_t rows = static_cast<std::int64_t>(x.size()) / c;
  ChannelStats s{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  for (std::size_t i = 0; i < x.size(); ++i) s.mean[i % c] += x[i] / rows;
  for (std::size_t i = 0; i < x.size(); ++i) s.variance[i % c] += (x[i] - s.mean[i % c]) * (x[i] - s.mean[i % c]) / rows;
  return s;
}

constexpr double kEpsilon = 1e-3;

void add_batch_norm(std::vector<OpCase>& out, const Shape& shape) {
  const std::int64_t c = shape.back();
  OpCase training;
  training.family = "conv";
  training.name = "batch_norm_training";
  training.inputs = {InputSpec(shape, -3.0, 5.0), InputSpec({c}, 0.5, 2.0), InputSpec({c})};
  training.forward = [](const Inputs& in) {
    Tensor mean, variance;
    return ops::batch_norm_training(in[0], in[1], in[2], kEpsilon, false, mean, variance);
  };
  training.reference = [c](const Inputs& in) {
    const std::vector<double> x = in[0].to_vector<double>(), gamma = in[1].to_vector<double>(),
                              beta = in[2].to_vector<double>();
    const ChannelStats s = channel_stats(x, c);
    Reference r{in[0].shape(), std::vector<double>(x.size()), {}};
    for (std::size_t i = 0; i < x.size(); ++i)
      r.values[i] = gamma[i % c] * (x[i] - s.mean[i % c]) / std::sqrt(s.variance[i % c] + kEpsilon) + beta[i % c];
    return r;
  };
  training.differentiable = [c](const std::vector<ag::Variable>& v) {
    Tensor moving_mean = zeros({c}, DType::Float64), moving_variance = ones({c}, DType::Float64);
    return ag::batch_norm(v[0], v[1], v[2], moving_mean, moving_variance, ag::BatchNormOptions{true, 0.99, kEpsilon});
  };
  training.rtol_float32 = 1e-5;
  training.atol_float32 = 1e-5;
  out.push_back(training);

  // The gradient with respect to x, gamma and beta (fused ReLU6 masks it).
  for (bool clamp : {false, true}) {
    for (int which = 0; which < 3; ++which) {
      OpCase backward = training;
      backward.name = "batch_norm_backward";
      backward.attributes = std::string(which == 0 ? "x" : which == 1 ? "gamma" : "beta") + (clamp ? ", relu6" : "");
      backward.inputs.push_back(InputSpec(shape));
      backward.differentiable = {};
      backward.forward = [which, clamp](const Inputs& in) {
        Tensor mean, variance;
        ops::batch_norm_training(in[0], in[1], in[2], kEpsilon, clamp, mean, variance);
        const ops::BatchNormGrads g = ops::batch_norm_backward(in[3], in[0], in[1], in[2], mean, variance, kEpsilon, clamp);
        return which == 0 ? g.x : which == 1 ? g.gamma : g.beta;
      };
      backward.reference = [c, which, clamp](const Inputs& in) {
        const std::vector<double> x = in[0].to_vector<double>(), gamma = in[1].to_vector<double>(),
                                  beta = in[2].to_vector<double>(), grad = in[3].to_vector<double>();
        const ChannelStats s = channel_stats(x, c);
        const double rows = static_cast<double>(x.size() / c);
        std::vector<double> xhat(x.size()), g(x.size()), sum_g(c, 0.0), sum_g_xhat(c, 0.0);
        for (std::size_t i = 0; i < x.size(); ++i) {
          xhat[i] = (x[i] - s.mean[i % c]) / std::sqrt(s.variance[i % c] + kEpsilon);
          const double y = gamma[i % c] * xhat[i] + beta[i % c];
          g[i] = clamp && !(y > 0.0 && y < 6.0) ? 0.0 : grad[i];
          sum_g[i % c] += g[i];
          sum_g_xhat[i % c] += g[i] * xhat[i];
        }
        if (which == 2) return Reference{{c}, sum_g, {}};
        if (which == 1) return Reference{{c}, sum_g_xhat, {}};
        Reference r{in[0].shape(), std::vector<double>(x.size()), {}};
        for (std::size_t i = 0; i < x.size(); ++i)
          r.values[i] = gamma[i % c] / std::sqrt(s.variance[i % c] + kEpsilon) *
                        (g[i] - sum_g[i % c] / rows - xhat[i] * sum_g_xhat[i % c] / rows);
        return r;
      };
      backward.rtol_float32 = 1e-4;
      backward.atol_float32 = 1e-4;
      out.push_back(backward);
    }
  }

  // The general form ag::batch_norm_activation: uncapped ReLU, and the bias of
  // the layer that made x (training: only the moving mean sees it; inference:
  // folded into the shift), against relu(BN(x + bias)) in double.
  for (bool training : {true, false}) {
    OpCase general;
    general.family = "conv";
    general.name = "batch_norm_activation";
    general.attributes = training ? "training, relu, input bias" : "inference, relu, input bias";
    // x, gamma, beta, bias (+ moving mean, moving variance in inference)
    general.inputs = {InputSpec(shape, -3.0, 5.0), InputSpec({c}, 0.5, 2.0), InputSpec({c}), InputSpec({c})};
    if (!training) general.inputs.insert(general.inputs.end(), {InputSpec({c}).constant(), InputSpec({c}, 0.5, 2.0).constant()});
    general.forward = [training](const Inputs& in) {
      if (training) {
        Tensor mean, variance;
        return ops::relu(ops::batch_norm_training(in[0], in[1], in[2], kEpsilon, false, mean, variance));
      }
      const ops::FoldedBatchNorm bn = ops::fold_batch_norm(in[1], in[2], ops::sub(in[4], in[3]), in[5], kEpsilon);
      return ops::relu(ops::channel_affine(in[0], bn.scale, bn.shift, false));
    };
    general.reference = [c, training](const Inputs& in) {
      std::vector<double> x = in[0].to_vector<double>();
      const std::vector<double> gamma = in[1].to_vector<double>(), beta = in[2].to_vector<double>(),
                                bias = in[3].to_vector<double>();
      for (std::size_t i = 0; i < x.size(); ++i) x[i] += bias[i % c];
      ChannelStats s{in.size() > 4 ? in[4].to_vector<double>() : std::vector<double>(),
                     in.size() > 5 ? in[5].to_vector<double>() : std::vector<double>()};
      if (training) s = channel_stats(x, c);
      Reference r{in[0].shape(), std::vector<double>(x.size()), {}};
      for (std::size_t i = 0; i < x.size(); ++i)
        r.values[i] = std::max(
            gamma[i % c] * (x[i] - s.mean[i % c]) / std::sqrt(s.variance[i % c] + kEpsilon) + beta[i % c], 0.0);
      return r;
    };
    general.differentiable = [c, training](const std::vector<ag::Variable>& v) {
      Tensor moving_mean = training ? zeros({c}, DType::Float64) : v[4].data().clone();
      Tensor moving_variance = training ? ones({c}, DType::Float64) : v[5].data().clone();
      return ag::batch_norm_activation(v[0], v[1], v[2], moving_mean, moving_variance,
                                       ag::BatchNormOptions{training, 0.99, kEpsilon}, ag::BatchNormActivation::Relu,
                                       v[3]);
    };
    general.rtol_float32 = 1e-5;
    general.atol_float32 = 1e-5;
    out.push_back(general);
  }

  // Inference: the per-channel affine map (+ ReLU6) and its backward.
  for (bool clamp : {false, true}) {
    OpCase affine;
    affine.family = "conv";
    affine.name = "channel_affine";
    affine.attributes = clamp ? "relu6" : "";
    affine.inputs = {InputSpec(shape, -4.0, 8.0), InputSpec({c}), InputSpec({c})};
    affine.forward = [clamp](const Inputs& in) { return ops::channel_affine(in[0], in[1], in[2], clamp); };
    affine.reference = [c, clamp](const Inputs& in) {
      const std::vector<double> x = in[0].to_vector<double>(), a = in[1].to_vector<double>(), b = in[2].to_vector<double>();
      Reference r{in[0].shape(), std::vector<double>(x.size()), {}};
      for (std::size_t i = 0; i < x.size(); ++i) {
        r.values[i] = x[i] * a[i % c] + b[i % c];
        if (clamp) r.values[i] = relu6(r.values[i]);
      }
      return r;
    };
    affine.rtol_float32 = 1e-6;
    affine.atol_float32 = 1e-6;
    out.push_back(affine);

    OpCase affine_backward = affine;
    affine_backward.name = "channel_affine_backward";
    affine_backward.inputs = {InputSpec(shape), InputSpec(shape, -1.0, 7.0), InputSpec({c})};
    affine_backward.forward = [clamp](const Inputs& in) {
      return ops::channel_affine_backward(in[0], in[1], in[2], clamp);
    };
    affine_backward.reference = [c, clamp](const Inputs& in) {
      const std::vector<double> g = in[0].to_vector<double>(), y = in[1].to_vector<double>(), a = in[2].to_vector<double>();
      Reference r{in[0].shape(), std::vector<double>(g.size()), {}};
      for (std::size_t i = 0; i < g.size(); ++i)
        r.values[i] = clamp && !(y[i] > 0.0 && y[i] < 6.0) ? 0.0 : g[i] * a[i % c];
      return r;
    };
    out.push_back(affine_backward);
  }
}

// Inference fusion: conv + folded batch norm + ReLU6 against conv, then the
// affine map, in double.
void add_fused_inference(std::vector<OpCase>& out, const ConvShape& s, bool depthwise) {
  const Geometry g = geometry_of(s, depthwise);
  const ops::Conv2dWindow win = window_of(s);
  OpCase c = conv_case(depthwise ? "depthwise_bn_relu6_inference" : "conv2d_bn_relu6_inference", s,
                       depthwise ? "multiplier " + std::to_string(g.multiplier) : std::to_string(g.oc) + " filters");
  // x, kernel, bias, gamma, beta, moving mean, moving variance
  c.inputs = {InputSpec({s.n, s.h, s.w, s.c}), InputSpec(kernel_shape(g)), InputSpec({g.oc}),
              InputSpec({g.oc}, 0.5, 2.0), InputSpec({g.oc}), InputSpec({g.oc}), InputSpec({g.oc}, 0.5, 2.0)};
  c.forward = [depthwise, win](const Inputs& in) {
    const ops::FoldedBatchNorm bn = ops::fold_batch_norm(in[3], in[4], in[5], in[6], kEpsilon);
    return depthwise ? ops::depthwise_bn_relu6_inference(in[0], in[1], in[2], bn, win)
                     : ops::conv2d_bn_relu6_inference(in[0], in[1], in[2], bn, win);
  };
  c.reference = [g](const Inputs& in) {
    Reference r = conv_forward(g, in[0], in[1], &in[2], false);
    const std::vector<double> gamma = in[3].to_vector<double>(), beta = in[4].to_vector<double>(),
                              mean = in[5].to_vector<double>(), var = in[6].to_vector<double>();
    for (std::size_t o = 0; o < r.values.size(); ++o) {
      const std::size_t ch = o % g.oc;
      const double scale = gamma[ch] / std::sqrt(var[ch] + kEpsilon);
      r.values[o] = relu6(r.values[o] * scale + beta[ch] - mean[ch] * scale);
      r.error_scale[o] = r.error_scale[o] * std::abs(scale) + std::abs(beta[ch]) + std::abs(mean[ch] * scale);
    }
    return r;
  };
  c.rtol_float32 = 1e-5;
  out.push_back(c);
}

// An inverted-residual block (ops::inverted_residual_inference): a 1x1
// expansion (expanded 0: none), a 3x3 depthwise of the stride, a 1x1
// projection, each with a folded batch norm given as scale and shift, ReLU6
// after the first two, and the residual when the shapes allow. The reference
// runs the stages in double.
struct BlockShape {
  std::int64_t n, h, w, c, expanded, stride, out_c;
};

void add_inverted_residual(std::vector<OpCase>& out, const BlockShape& b) {
  const bool expand = b.expanded > 0;
  const std::int64_t e = expand ? b.expanded : b.c;
  const ConvShape pointwise_in{b.n, b.h, b.w, b.c, 1, 1, e, 1, 1, ConvPadding::Valid};
  const ConvShape depthwise_shape{b.n, b.h, b.w, e, 3, 3, 1, b.stride, b.stride, ConvPadding::Same};
  const Geometry ge = geometry_of(pointwise_in, false), gd = geometry_of(depthwise_shape, true);
  const ConvShape pointwise_out{b.n, gd.oh, gd.ow, e, 1, 1, b.out_c, 1, 1, ConvPadding::Valid};
  const Geometry gp = geometry_of(pointwise_out, false);
  const bool residual = gp.oh == b.h && gp.ow == b.w && b.out_c == b.c;
  OpCase c = conv_case("inverted_residual_inference", depthwise_shape,
                       (expand ? "expand " + std::to_string(e) : std::string("no expansion")) + ", project " +
                           std::to_string(b.out_c) + (residual ? ", residual" : ""));
  // x, then per stage: kernel, folded scale, folded shift.
  c.inputs = {InputSpec({b.n, b.h, b.w, b.c})};
  auto add_stage = [&](const Shape& kernel, std::int64_t channels) {
    c.inputs.push_back(InputSpec(kernel, -0.5, 0.5));
    c.inputs.push_back(InputSpec({channels}, 0.5, 1.5));
    c.inputs.push_back(InputSpec({channels}, -0.5, 1.0));
  };
  if (expand) add_stage({1, 1, b.c, e}, e);
  add_stage({3, 3, e, 1}, e);
  add_stage({1, 1, e, b.out_c}, b.out_c);
  const ops::Conv2dWindow dw_window = window_of(depthwise_shape);
  c.forward = [expand, dw_window, residual](const Inputs& in) {
    auto stage = [&](std::size_t first, const ops::Conv2dWindow& window, bool relu6) {
      ops::FoldedConvStage s;
      s.kernel = in[first];
      s.bn = {in[first + 1], in[first + 2]};
      s.window = window;
      s.relu6 = relu6;
      return s;
    };
    const std::size_t dw = expand ? 4 : 1;
    const ops::FoldedConvStage e_stage = expand ? stage(1, {}, true) : ops::FoldedConvStage{};
    return ops::inverted_residual_inference(in[0], expand ? &e_stage : nullptr, stage(dw, dw_window, true),
                                            stage(dw + 3, {}, false), residual);
  };
  c.reference = [expand, ge, gd, gp, residual](const Inputs& in) {
    // One stage in double: conv, then * scale + shift, then ReLU6; the error
    // scale carries the conv's sum |x * w| through |scale| and adds |shift|.
    auto stage = [&](const Geometry& g, const Tensor& x, std::size_t first, bool relu6_after) {
      Reference r = conv_forward(g, x, in[first], nullptr, false);
      const std::vector<double> scale = in[first + 1].to_vector<double>(), shift = in[first + 2].to_vector<double>();
      for (std::size_t o = 0; o < r.values.size(); ++o) {
        const std::size_t ch = o % static_cast<std::size_t>(g.oc);
        const double v = r.values[o] * scale[ch] + shift[ch];
        r.values[o] = relu6_after ? relu6(v) : v;
        r.error_scale[o] = r.error_scale[o] * std::abs(scale[ch]) + std::abs(shift[ch]);
      }
      return r;
    };
    Tensor h = in[0].to(DType::Float64);
    if (expand) {
      const Reference r = stage(ge, h, 1, true);
      h = from_vector(r.values, r.shape);
    }
    const std::size_t dw = expand ? 4 : 1;
    const Reference d = stage(gd, h, dw, true);
    Reference r = stage(gp, from_vector(d.values, d.shape), dw + 3, false);
    if (residual) {
      const std::vector<double> x = in[0].to_vector<double>();
      for (std::size_t o = 0; o < r.values.size(); ++o) {
        r.values[o] += x[o];
        r.error_scale[o] += std::abs(x[o]);
      }
    }
    return r;
  };
  // Three stages of float32 rounding, each scaled into the next.
  c.rtol_float32 = 2e-5;
  c.differentiable = {};  // inference only (ag::inverted_residual differentiates through its stages)
  out.push_back(c);
}

}  // namespace

std::vector<OpCase> conv_cases() {
  std::vector<OpCase> out;
  using P = ConvPadding;
  // Conv2D: the 1x1 GEMM path, the direct small-Cin kernel (with its padded
  // row buffer), blocked im2col/GEMM, odd sizes, strides, both paddings,
  // TensorFlow's bottom/right-only "same" padding on even inputs, batch 1.
  // DepthwiseConv2D: ragged channel counts around the SIMD widths,
  // multipliers, long rows, window larger than the input, many taps.
  const bool conv = false, depthwise = true;
  for (const auto& [kind, s] : std::vector<std::pair<bool, ConvShape>>{
           {conv, {2, 7, 5, 8, 1, 1, 12, 1, 1, P::Valid}},        // pointwise
           {conv, {1, 6, 6, 33, 1, 1, 17, 1, 1, P::Same}},        // pointwise, odd channels
           {conv, {1, 5, 7, 12, 1, 1, 200, 1, 1, P::Same}},       // pointwise, wide output (threads split dw by columns)
           {conv, {2, 3, 5, 40, 1, 1, 70, 1, 1, P::Valid}},       // pointwise, threads split dw by input channels
           {conv, {2, 7, 7, 6, 1, 1, 5, 2, 2, P::Same}},          // 1x1 stride 2 (im2col path)
           {conv, {2, 9, 7, 6, 3, 3, 10, 1, 1, P::Same}},         // 3x3/1 same, odd input
           {conv, {1, 8, 10, 5, 3, 3, 7, 2, 2, P::Same}},         // 3x3/2 same, even input (pads bottom/right only)
           {conv, {3, 9, 9, 8, 3, 3, 16, 2, 2, P::Same}},         // 3x3/2 same, odd input
           {conv, {2, 6, 5, 7, 3, 3, 9, 1, 1, P::Valid}},         // 3x3 valid
           {conv, {1, 11, 8, 5, 5, 3, 6, 2, 1, P::Valid}},        // 5x3 stride (2,1) valid
           {conv, {2, 24, 24, 16, 3, 3, 24, 1, 1, P::Same}},      // several im2col blocks
           {conv, {2, 10, 11, 3, 3, 3, 32, 2, 2, P::Same}},       // Cin 3 direct, stride 2
           {conv, {1, 7, 8, 3, 3, 3, 20, 1, 1, P::Valid}},        // Cin 3 direct, valid, ragged Cout
           {conv, {1, 5, 5, 1, 3, 3, 3, 1, 1, P::Same}},          // Cin 1 direct
           {conv, {2, 19, 23, 3, 3, 3, 32, 2, 2, P::Same}},       // Cin 3 padded rows, stride 2, odd sizes
           {conv, {1, 9, 12, 3, 3, 3, 32, 1, 1, P::Valid}},       // Cin 3 padded rows, valid
           {conv, {1, 17, 21, 2, 5, 5, 64, 1, 1, P::Same}},       // Cin 2 5x5 padded rows, Cout 64
           {conv, {1, 3, 3, 4, 3, 3, 5, 1, 1, P::Valid}},         // window equals input
           {conv, {1, 2, 2, 2, 3, 3, 3, 1, 1, P::Same}},          // small enough to gradcheck
           {depthwise, {2, 9, 7, 32, 3, 3, 1, 1, 1, P::Same}},    // 3x3/1 same, odd input
           {depthwise, {1, 8, 10, 48, 3, 3, 1, 2, 2, P::Same}},   // 3x3/2 same, even input
           {depthwise, {3, 9, 11, 16, 3, 3, 1, 2, 2, P::Same}},   // 3x3/2 same, odd input, batch 3
           {depthwise, {2, 7, 6, 37, 3, 3, 1, 1, 1, P::Valid}},   // 3x3 valid, ragged channels
           {depthwise, {1, 12, 13, 24, 3, 3, 1, 1, 1, P::Same}},  // 24 channels (1.5 AVX-512 vectors)
           {depthwise, {2, 5, 5, 5, 3, 3, 1, 1, 1, P::Same}},     // 5 channels
           {depthwise, {1, 9, 8, 20, 5, 5, 1, 2, 2, P::Same}},    // 5x5/2
           {depthwise, {1, 7, 9, 16, 3, 1, 1, 1, 2, P::Valid}},   // 3x1 stride (1,2)
           {depthwise, {2, 6, 7, 6, 3, 3, 2, 1, 1, P::Same}},     // multiplier 2
           {depthwise, {1, 9, 8, 7, 3, 3, 3, 2, 2, P::Same}},     // multiplier 3, stride 2, ragged channels
           {depthwise, {2, 10, 9, 16, 3, 3, 4, 1, 1, P::Valid}},  // multiplier 4 over whole vectors
           {depthwise, {1, 3, 3, 64, 3, 3, 1, 1, 1, P::Valid}},   // window equals input
           {depthwise, {1, 2, 2, 32, 3, 3, 1, 1, 1, P::Same}},    // input smaller than the window (same)
           {depthwise, {1, 24, 20, 64, 3, 3, 1, 1, 1, P::Same}},  // longer rows (4-wide column blocks)
           {depthwise, {3, 11, 30, 40, 3, 3, 1, 2, 2, P::Same}},  // stride-2 tiles of 8 and 4, odd rows, batch 3
           {depthwise, {2, 13, 21, 33, 3, 3, 1, 1, 1, P::Same}},  // stride-1 tiles, ragged channels, odd rows
           {depthwise, {1, 3, 40, 4, 1, 35, 1, 1, 2, P::Valid}},  // 1x35/2: more taps than the fast gather keeps
           {depthwise, {1, 6, 40, 16, 2, 33, 1, 2, 2, P::Same}},  // 2x33 stride 2: 17 taps per pixel
           {depthwise, {1, 3, 3, 2, 3, 3, 2, 1, 1, P::Same}}})    // small enough to gradcheck
    add_convolution(out, s, kind);
  // Pooling: windows and strides of both paddings, partial "same" windows.
  for (const ConvShape& s : std::vector<ConvShape>{
           {2, 7, 9, 5, 2, 2, 0, 2, 2, P::Valid},  {1, 7, 7, 3, 3, 3, 0, 2, 2, P::Same},
           {2, 6, 8, 17, 3, 2, 0, 1, 2, P::Same}, {1, 9, 5, 33, 2, 3, 0, 1, 1, P::Valid},
           {1, 4, 4, 2, 2, 2, 0, 1, 1, P::Same}})
    for (Pool pool : {Pool::Average, Pool::Max}) add_pooling(out, s, pool);
  // Global average pooling and zero padding, with their gradients.
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{1, 6, 6, 1280}, Shape{3, 7, 5, 17}, Shape{1, 2, 2, 3}}) {
    OpCase gap;
    gap.family = "conv";
    gap.name = "global_average_pool2d";
    gap.inputs = {InputSpec(shape)};
    gap.forward = [](const Inputs& in) { return ops::global_average_pool2d(in[0]); };
    gap.reference = [](const Inputs& in) {
      const Shape& s = in[0].shape();
      const std::vector<double> v = in[0].to_vector<double>();
      Reference r{{s[0], s[3]}, std::vector<double>(s[0] * s[3], 0.0), {}};
      for (std::size_t i = 0; i < v.size(); ++i)
        r.values[(i / (s[1] * s[2] * s[3])) * s[3] + i % s[3]] += v[i] / static_cast<double>(s[1] * s[2]);
      return r;
    };
    gap.differentiable = [](const std::vector<ag::Variable>& v) { return ag::global_average_pool2d(v[0]); };
    gap.rtol_float32 = 1e-5;
    out.push_back(gap);

    OpCase gap_backward = gap;
    gap_backward.name = "global_average_pool2d_backward";
    gap_backward.inputs = {InputSpec({shape[0], shape[3]})};
    gap_backward.differentiable = {};
    gap_backward.forward = [shape](const Inputs& in) { return ops::global_average_pool2d_backward(in[0], shape); };
    gap_backward.reference = [shape](const Inputs& in) {
      const std::vector<double> g = in[0].to_vector<double>();
      Reference r{shape, std::vector<double>(shape_numel(shape)), {}};
      for (std::size_t i = 0; i < r.values.size(); ++i)
        r.values[i] = g[(i / (shape[1] * shape[2] * shape[3])) * shape[3] + i % shape[3]] /
                      static_cast<double>(shape[1] * shape[2]);
      return r;
    };
    out.push_back(gap_backward);

    const std::int64_t top = 1, bottom = 2, left = 0, right = 1;
    const Shape padded{shape[0], shape[1] + top + bottom, shape[2] + left + right, shape[3]};
    auto padded_index = [=](std::int64_t i) {  // input element i -> its place in the padded tensor
      const std::int64_t c = i % shape[3], x = (i / shape[3]) % shape[2], y = (i / (shape[3] * shape[2])) % shape[1],
                         n = i / (shape[3] * shape[2] * shape[1]);
      return ((n * padded[1] + y + top) * padded[2] + x + left) * padded[3] + c;
    };
    OpCase pad;
    pad.family = "conv";
    pad.name = "zero_pad2d";
    pad.attributes = "1, 2, 0, 1";
    pad.inputs = {InputSpec(shape).viewed(Layout::EveryOther)};
    pad.forward = [=](const Inputs& in) { return ops::zero_pad2d(in[0], top, bottom, left, right); };
    pad.reference = [=](const Inputs& in) {
      const std::vector<double> v = in[0].to_vector<double>();
      Reference r{padded, std::vector<double>(shape_numel(padded), 0.0), {}};
      for (std::size_t i = 0; i < v.size(); ++i) r.values[padded_index(i)] = v[i];
      return r;
    };
    pad.differentiable = [=](const std::vector<ag::Variable>& v) { return ag::zero_pad2d(v[0], top, bottom, left, right); };
    pad.exact();
    out.push_back(pad);

    OpCase crop = pad;
    crop.name = "zero_pad2d_backward";
    crop.inputs = {InputSpec(padded)};
    crop.differentiable = {};
    crop.forward = [=](const Inputs& in) { return ops::zero_pad2d_backward(in[0], top, bottom, left, right); };
    crop.reference = [=](const Inputs& in) {
      const std::vector<double> v = in[0].to_vector<double>();
      Reference r{shape, std::vector<double>(shape_numel(shape)), {}};
      for (std::size_t i = 0; i < r.values.size(); ++i) r.values[i] = v[padded_index(i)];
      return r;
    };
    out.push_back(crop);
  }
  // Batch norm: rows of 1, odd channel counts, NHWC and 2-D.
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{7, 17}, Shape{3, 5, 5, 33}, Shape{2, 6, 6, 64}, Shape{4, 3}})
    add_batch_norm(out, shape);
  // Inference fusion of conv + folded batch norm + ReLU6.
  for (const auto& [kind, s] : std::vector<std::pair<bool, ConvShape>>{
           {conv, {2, 7, 5, 8, 1, 1, 12, 1, 1, P::Valid}},     {conv, {1, 9, 8, 6, 3, 3, 16, 2, 2, P::Same}},
           {conv, {2, 6, 7, 3, 3, 3, 32, 2, 2, P::Same}},      {depthwise, {2, 9, 7, 32, 3, 3, 1, 1, 1, P::Same}},
           {depthwise, {1, 8, 10, 37, 3, 3, 1, 2, 2, P::Same}}, {depthwise, {2, 6, 7, 6, 3, 3, 2, 1, 1, P::Valid}}})
    add_fused_inference(out, s, kind);
  // Inverted-residual blocks: bands of rows and whole images, stride 2,
  // ragged channels, no expansion, a 6x6 image at batch 1 (cut by channels
  // between threads).
  for (const BlockShape& b : std::vector<BlockShape>{
           {1, 9, 7, 8, 24, 1, 8}, {2, 11, 10, 5, 20, 2, 7}, {1, 6, 6, 16, 64, 1, 16}, {2, 8, 9, 16, 0, 1, 12}})
    add_inverted_residual(out, b);
  return out;
}

}  // namespace petal::test
