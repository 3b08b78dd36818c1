// Differentiable convolution-family ops: each runs the Tensor-level op of
// kernels/ops_conv.hpp and records a backward function that calls the
// matching backward op, computing only the gradients its inputs need.
#include "autograd/conv_functions.hpp"

#include <vector>

#include "autograd/function_helpers.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"

namespace petal::ag {
namespace {

using detail::check_defined;
using detail::needs_grad;

// The window of a kh x kw kernel over x [N, H, W, C] under the options.
ops::Conv2dWindow window_for(const Variable& x, std::int64_t kh, std::int64_t kw, const Conv2dOptions& o,
                             const char* op) {
  check_defined(x, op);
  PETAL_CHECK(x.dim() == 4, ShapeError, op, ": input must be 4-D [N, H, W, C], got ", shape_str(x.shape()));
  return ops::conv2d_window(x.size(1), x.size(2), kh, kw, o.stride_h, o.stride_w, o.padding, op);
}

void check_kernel_rank(const Variable& kernel, const char* op) {
  check_defined(kernel, op);
  PETAL_CHECK(kernel.dim() == 4, ShapeError, op, ": kernel must be 4-D, got ", shape_str(kernel.shape()));
}

// All axes but the channel (last) one.
ops::Axes leading_axes(std::int64_t dim) {
  ops::Axes axes;
  for (std::int64_t a = 0; a + 1 < dim; ++a) axes.push_back(a);
  return axes;
}

Variable batch_norm_impl(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                         Tensor& moving_variance, const BatchNormOptions& options, bool relu6, const char* op) {
  check_defined(x, op);
  check_defined(gamma, op);
  check_defined(beta, op);
  const double eps = options.epsilon;
  if (options.training) {
    Tensor mean, var;
    Tensor y = ops::batch_norm_training(x.data(), gamma.data(), beta.data(), eps, relu6, mean, var);
    const std::int64_t count = x.numel() / x.size(-1);
    ops::update_moving_statistics(moving_mean, moving_variance, mean, var, count, options.momentum);
    const bool gx = needs_grad(x), gg = needs_grad(gamma), gb = needs_grad(beta);
    return make_op_result(
        std::move(y), op, {x, gamma, beta},
        [xd = x.data(), gd = gamma.data(), bd = beta.data(), mean, var, eps, relu6, gx, gg,
         gb](const Tensor& grad) -> std::vector<Tensor> {
          ops::BatchNormGrads g = ops::batch_norm_backward(grad, xd, gd, bd, mean, var, eps, relu6);
          return {gx ? g.x : Tensor(), gg ? g.gamma : Tensor(), gb ? g.beta : Tensor()};
        });
  }
  // Inference: y = relu6?(x * scale + shift) with the moving statistics.
  const ops::FoldedBatchNorm folded = ops::fold_batch_norm(gamma.data(), beta.data(), moving_mean, moving_variance, eps);
  Tensor y = ops::channel_affine(x.data(), folded.scale, folded.shift, relu6);
  const bool gx = needs_grad(x), gg = needs_grad(gamma), gb = needs_grad(beta);
  // x_hat = (x - mean) / sqrt(var + eps) is the affine map with gamma = 1, beta = 0.
  const ops::FoldedBatchNorm unit = ops::fold_batch_norm(ones({x.size(-1)}, x.dtype(), x.device()),
                                                         zeros({x.size(-1)}, x.dtype(), x.device()),
                                                         moving_mean, moving_variance, eps);
  return make_op_result(
      y, op, {x, gamma, beta},
      [xd = x.data(), y, scale = folded.scale, unit, relu6, gx, gg, gb](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor g = relu6 ? ops::relu6_backward(grad, y) : grad;
        const ops::Axes axes = leading_axes(g.dim());
        Tensor dx = gx ? ops::mul(g, scale) : Tensor();
        Tensor dgamma = gg ? ops::sum(ops::mul(g, ops::channel_affine(xd, unit.scale, unit.shift, false)), axes)
                           : Tensor();
        Tensor dbeta = gb ? ops::sum(g, axes) : Tensor();
        return {dx, dgamma, dbeta};
      });
}

}  // namespace

namespace {

// conv2d and depthwise_conv2d: the same recording over their own kernel ops.
Variable convolution(const Variable& x, const Variable& kernel, const Variable& bias, const Conv2dOptions& options,
                     bool depthwise, const char* op) {
  check_kernel_rank(kernel, op);
  const ops::Conv2dWindow window = window_for(x, kernel.size(0), kernel.size(1), options, op);
  const Tensor bias_data = bias.defined() ? bias.data() : Tensor();
  Tensor y = depthwise ? ops::depthwise_conv2d(x.data(), kernel.data(), bias_data, window)
                       : ops::conv2d(x.data(), kernel.data(), bias_data, window);
  const bool gx = needs_grad(x), gk = needs_grad(kernel), gb = needs_grad(bias);
  return make_op_result(
      std::move(y), op, {x, kernel, bias},
      [xd = x.data(), kd = kernel.data(), window, depthwise, gx, gk, gb](const Tensor& grad) {
        const auto backward_input = depthwise ? ops::depthwise_conv2d_backward_input : ops::conv2d_backward_input;
        const auto backward_kernel = depthwise ? ops::depthwise_conv2d_backward_kernel : ops::conv2d_backward_kernel;
        Tensor dx, dk, db;
        if (gx) dx = backward_input(grad, kd, xd.shape(), window);
        if (gk || gb) {
          Tensor k_grad = backward_kernel(grad, xd, kd.shape(), window, gb ? &db : nullptr);
          if (gk) dk = k_grad;
        }
        return std::vector<Tensor>{dx, dk, db};
      });
}

}  // namespace

Variable conv2d(const Variable& x, const Variable& kernel, const Variable& bias, const Conv2dOptions& options) {
  return convolution(x, kernel, bias, options, false, "conv2d");
}

Variable depthwise_conv2d(const Variable& x, const Variable& kernel, const Variable& bias,
                          const Conv2dOptions& options) {
  return convolution(x, kernel, bias, options, true, "depthwise_conv2d");
}

Variable batch_norm(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                    Tensor& moving_variance, const BatchNormOptions& options) {
  return batch_norm_impl(x, gamma, beta, moving_mean, moving_variance, options, false, "batch_norm");
}

Variable batch_norm_relu6(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                          Tensor& moving_variance, const BatchNormOptions& options) {
  return batch_norm_impl(x, gamma, beta, moving_mean, moving_variance, options, true, "batch_norm_relu6");
}

Variable conv_batch_norm(ConvKind kind, const Variable& x, const Variable& kernel, const Variable& gamma,
                         const Variable& beta, Tensor& moving_mean, Tensor& moving_variance,
                         const Conv2dOptions& conv_options, const BatchNormOptions& bn_options, bool relu6) {
  const bool depthwise = kind == ConvKind::Depthwise;
  const char* op = depthwise ? "depthwise_conv2d_batch_norm" : "conv2d_batch_norm";
  check_kernel_rank(kernel, op);
  check_defined(gamma, op);
  check_defined(beta, op);
  const ops::Conv2dWindow window = window_for(x, kernel.size(0), kernel.size(1), conv_options, op);
  const bool gx = needs_grad(x), gk = needs_grad(kernel), gg = needs_grad(gamma), gb = needs_grad(beta);
  const double eps = bn_options.epsilon;
  if (!bn_options.training) {
    if (!gg && !gb) {
      // Frozen batch norm (inference mode, gamma and beta fixed: fine-tuning
      // under a frozen BN, or plain inference): the normalisation and ReLU6
      // run inside the convolution's single pass over its output, and no
      // pre-normalisation tensor is kept. The backward pass needs only y:
      // ReLU6 passes gradient exactly where 0 < y < 6.
      const ops::FoldedBatchNorm folded =
          ops::fold_batch_norm(gamma.data(), beta.data(), moving_mean, moving_variance, eps);
      Tensor y = depthwise ? ops::depthwise_bn_relu6_inference(x.data(), kernel.data(), Tensor(), folded, window, relu6)
                           : ops::conv2d_bn_relu6_inference(x.data(), kernel.data(), Tensor(), folded, window, relu6);
      if (!(gx || gk)) return Variable(std::move(y), false);
      return make_op_result(
          y, op, {x, kernel, gamma, beta},
          [xd = x.data(), kd = kernel.data(), y, scale = folded.scale, window, relu6, depthwise, gx,
           gk](const Tensor& grad) -> std::vector<Tensor> {
            const Tensor g = ops::channel_affine_backward(grad, y, scale, relu6);
            Tensor dx, dk;
            if (gx)
              dx = depthwise ? ops::depthwise_conv2d_backward_input(g, kd, xd.shape(), window)
                             : ops::conv2d_backward_input(g, kd, xd.shape(), window);
            if (gk)
              dk = depthwise ? ops::depthwise_conv2d_backward_kernel(g, xd, kd.shape(), window)
                             : ops::conv2d_backward_kernel(g, xd, kd.shape(), window);
            return {dx, dk, Tensor(), Tensor()};
          });
    }
    const Variable conv = depthwise ? depthwise_conv2d(x, kernel, Variable(), conv_options)
                                    : conv2d(x, kernel, Variable(), conv_options);
    return relu6 ? batch_norm_relu6(conv, gamma, beta, moving_mean, moving_variance, bn_options)
                 : batch_norm(conv, gamma, beta, moving_mean, moving_variance, bn_options);
  }
  ops::ConvBatchNormResult r =
      depthwise ? ops::depthwise_conv2d_batch_norm_training(x.data(), kernel.data(), window, gamma.data(), beta.data(),
                                                            eps, relu6)
                : ops::conv2d_batch_norm_training(x.data(), kernel.data(), window, gamma.data(), beta.data(), eps,
                                                  relu6);
  ops::update_moving_statistics(moving_mean, moving_variance, r.mean, r.biased_variance,
                                r.conv_out.numel() / r.conv_out.size(-1), bn_options.momentum);
  return make_op_result(
      std::move(r.y), op, {x, kernel, gamma, beta},
      [xd = x.data(), kd = kernel.data(), gd = gamma.data(), bd = beta.data(), conv_out = r.conv_out, mean = r.mean,
       var = r.biased_variance, window, eps, relu6, depthwise, gx, gk, gg, gb](const Tensor& grad) {
        const ops::BatchNormGrads g = ops::batch_norm_backward(grad, conv_out, gd, bd, mean, var, eps, relu6);
        Tensor dx, dk;
        if (gx)
          dx = depthwise ? ops::depthwise_conv2d_backward_input(g.x, kd, xd.shape(), window)
                         : ops::conv2d_backward_input(g.x, kd, xd.shape(), window);
        if (gk)
          dk = depthwise ? ops::depthwise_conv2d_backward_kernel(g.x, xd, kd.shape(), window)
                         : ops::conv2d_backward_kernel(g.x, xd, kd.shape(), window);
        return std::vector<Tensor>{dx, dk, gg ? g.gamma : Tensor(), gb ? g.beta : Tensor()};
      });
}

Variable zero_pad2d(const Variable& x, std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right) {
  check_defined(x, "zero_pad2d");
  Tensor y = ops::zero_pad2d(x.data(), top, bottom, left, right);
  return make_op_result(std::move(y), "zero_pad2d", {x}, [top, bottom, left, right](const Tensor& grad) {
    return std::vector<Tensor>{ops::zero_pad2d_backward(grad, top, bottom, left, right)};
  });
}

Variable global_average_pool2d(const Variable& x) {
  check_defined(x, "global_average_pool2d");
  Tensor y = ops::global_average_pool2d(x.data());
  return make_op_result(std::move(y), "global_average_pool2d", {x}, [shape = x.shape()](const Tensor& grad) {
    return std::vector<Tensor>{ops::global_average_pool2d_backward(grad, shape)};
  });
}

Variable average_pool2d(const Variable& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dOptions& options) {
  const char* op = "average_pool2d";
  const ops::Conv2dWindow window = window_for(x, pool_h, pool_w, options, op);
  Tensor y = ops::average_pool2d(x.data(), pool_h, pool_w, window);
  return make_op_result(std::move(y), op, {x}, [shape = x.shape(), pool_h, pool_w, window](const Tensor& grad) {
    return std::vector<Tensor>{ops::average_pool2d_backward(grad, shape, pool_h, pool_w, window)};
  });
}

Variable max_pool2d(const Variable& x, std::int64_t pool_h, std::int64_t pool_w, const Conv2dOptions& options) {
  const char* op = "max_pool2d";
  const ops::Conv2dWindow window = window_for(x, pool_h, pool_w, options, op);
  Tensor y = ops::max_pool2d(x.data(), pool_h, pool_w, window);
  return make_op_result(std::move(y), op, {x}, [xd = x.data(), pool_h, pool_w, window](const Tensor& grad) {
    return std::vector<Tensor>{ops::max_pool2d_backward(grad, xd, pool_h, pool_w, window)};
  });
}

Variable dropout(const Variable& x, double rate, bool training, Generator& gen) {
  check_defined(x, "dropout");
  PETAL_CHECK(rate >= 0.0 && rate < 1.0, ValueError, "dropout: rate must be in [0, 1), got ", rate);
  if (!training || rate == 0.0) return x;
  // The mask comes from the host generator on every device (the same draws
  // as on the CPU), then moves to x's device.
  Tensor mask = ops::dropout_mask(x.shape(), rate, gen, x.dtype()).to(x.device());
  Tensor y = ops::mul(x.data(), mask);
  return make_op_result(std::move(y), "dropout", {x},
                        [mask](const Tensor& grad) { return std::vector<Tensor>{ops::mul(grad, mask)}; });
}

}  // namespace petal::ag
