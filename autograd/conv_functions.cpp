// Differentiable convolution-family ops: each runs the Tensor-level op of
// kernels/ops_conv.hpp and records a backward function that calls the
// matching backward op, computing only the gradients its inputs need.
#include "autograd/conv_functions.hpp"

#include <vector>

#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"
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

// The batch mean that updates moving_mean: that of x + bias.
Tensor mean_with_bias(const Tensor& mean, const Variable& bias) {
  return bias.defined() ? ops::add(mean, bias.data()) : mean;
}

// Gradient through an uncapped ReLU applied after the kernels, given its output.
Tensor through_relu(const Tensor& grad, const Tensor& y, BatchNormActivation activation) {
  return activation == BatchNormActivation::Relu ? ops::relu_backward(grad, y) : grad;
}

Variable batch_norm_impl(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                         Tensor& moving_variance, const BatchNormOptions& options, BatchNormActivation activation,
                         const Variable& bias, const char* op) {
  check_defined(x, op);
  check_defined(gamma, op);
  check_defined(beta, op);
  const double eps = options.epsilon;
  const bool relu6 = activation == BatchNormActivation::Relu6;
  const bool relu = activation == BatchNormActivation::Relu;
  const bool gx = needs_grad(x), gg = needs_grad(gamma), gb = needs_grad(beta), gbias = needs_grad(bias);
  if (options.training) {
    // A per-channel bias shifts the batch mean and nothing else: x is
    // normalised as it is, and the bias only enters the moving mean.
    Tensor mean, var;
    Tensor y = ops::batch_norm_training(x.data(), gamma.data(), beta.data(), eps, relu6, mean, var);
    if (relu) y = ops::relu(y);
    const std::int64_t count = x.numel() / x.size(-1);
    ops::update_moving_statistics(moving_mean, moving_variance, mean_with_bias(mean, bias), var, count,
                                  options.momentum);
    return make_op_result(
        y, op, {x, gamma, beta, bias},
        [xd = x.data(), gd = gamma.data(), bd = beta.data(), y = relu ? y : Tensor(), mean, var, eps, relu6,
         activation, gx, gg, gb, gbias](const Tensor& grad) -> std::vector<Tensor> {
          ops::BatchNormGrads g =
              ops::batch_norm_backward(through_relu(grad, y, activation), xd, gd, bd, mean, var, eps, relu6);
          return {gx ? g.x : Tensor(), gg ? g.gamma : Tensor(), gb ? g.beta : Tensor(),
                  gbias ? zeros(gd.shape(), gd.dtype(), gd.device()) : Tensor()};
        });
  }
  // Inference: y = act(x * scale + shift) with the moving statistics; a bias
  // b is x + b - mean = x - (mean - b): the mean less the bias.
  const Tensor mean = bias.defined() ? ops::sub(moving_mean, bias.data()) : moving_mean;
  const ops::FoldedBatchNorm folded = ops::fold_batch_norm(gamma.data(), beta.data(), mean, moving_variance, eps);
  Tensor y = ops::channel_affine(x.data(), folded.scale, folded.shift, relu6);
  if (relu) y = ops::relu(y);
  // x_hat = (x - mean) / sqrt(var + eps) is the affine map with gamma = 1, beta = 0.
  const ops::FoldedBatchNorm unit = ops::fold_batch_norm(ones({x.size(-1)}, x.dtype(), x.device()),
                                                         zeros({x.size(-1)}, x.dtype(), x.device()), mean,
                                                         moving_variance, eps);
  return make_op_result(
      y, op, {x, gamma, beta, bias},
      [xd = x.data(), y, scale = folded.scale, unit, relu6, relu, gx, gg, gb, gbias](const Tensor& grad)
          -> std::vector<Tensor> {
        const Tensor g = relu6 ? ops::relu6_backward(grad, y) : relu ? ops::relu_backward(grad, y) : grad;
        const ops::Axes axes = leading_axes(g.dim());
        Tensor dx = gx || gbias ? ops::mul(g, scale) : Tensor();
        Tensor dgamma = gg ? ops::sum(ops::mul(g, ops::channel_affine(xd, unit.scale, unit.shift, false)), axes)
                           : Tensor();
        Tensor dbeta = gb ? ops::sum(g, axes) : Tensor();
        Tensor dbias = gbias ? ops::sum(dx, axes) : Tensor();
        return {gx ? dx : Tensor(), dgamma, dbeta, dbias};
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
  return batch_norm_impl(x, gamma, beta, moving_mean, moving_variance, options, BatchNormActivation::None, Variable(),
                         "batch_norm");
}

Variable batch_norm_relu6(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                          Tensor& moving_variance, const BatchNormOptions& options) {
  return batch_norm_impl(x, gamma, beta, moving_mean, moving_variance, options, BatchNormActivation::Relu6, Variable(),
                         "batch_norm_relu6");
}

const char* activation_name(BatchNormActivation activation) {
  switch (activation) {
    case BatchNormActivation::Relu: return "relu";
    case BatchNormActivation::Relu6: return "relu6";
    case BatchNormActivation::None: break;
  }
  return "none";
}

Variable batch_norm_activation(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& moving_mean,
                               Tensor& moving_variance, const BatchNormOptions& options,
                               BatchNormActivation activation, const Variable& input_bias) {
  const char* op = activation == BatchNormActivation::Relu6  ? "batch_norm_relu6"
                   : activation == BatchNormActivation::Relu ? "batch_norm_relu"
                                                             : "batch_norm";
  return batch_norm_impl(x, gamma, beta, moving_mean, moving_variance, options, activation, input_bias, op);
}

Variable conv_batch_norm(ConvKind kind, const Variable& x, const Variable& kernel, const Variable& gamma,
                         const Variable& beta, Tensor& moving_mean, Tensor& moving_variance,
                         const Conv2dOptions& conv_options, const BatchNormOptions& bn_options, bool relu6) {
  return conv_batch_norm(kind, x, kernel, Variable(), gamma, beta, moving_mean, moving_variance, conv_options,
                         bn_options, relu6 ? BatchNormActivation::Relu6 : BatchNormActivation::None);
}

Variable conv_batch_norm(ConvKind kind, const Variable& x, const Variable& kernel, const Variable& bias,
                         const Variable& gamma, const Variable& beta, Tensor& moving_mean, Tensor& moving_variance,
                         const Conv2dOptions& conv_options, const BatchNormOptions& bn_options,
                         BatchNormActivation activation) {
  const bool depthwise = kind == ConvKind::Depthwise;
  const char* op = depthwise ? "depthwise_conv2d_batch_norm" : "conv2d_batch_norm";
  check_kernel_rank(kernel, op);
  check_defined(gamma, op);
  check_defined(beta, op);
  const ops::Conv2dWindow window = window_for(x, kernel.size(0), kernel.size(1), conv_options, op);
  const bool gx = needs_grad(x), gk = needs_grad(kernel), gg = needs_grad(gamma), gb = needs_grad(beta),
             gbias = needs_grad(bias);
  const double eps = bn_options.epsilon;
  const bool relu6 = activation == BatchNormActivation::Relu6;
  const bool relu = activation == BatchNormActivation::Relu;
  if (!bn_options.training) {
    if (!gg && !gb) {
      // Frozen batch norm (inference mode, gamma and beta fixed: fine-tuning
      // under a frozen BN, or plain inference): the normalisation, the
      // convolution's bias and ReLU6 run inside the convolution's single pass
      // over its output (ReLU as one more pass), and no pre-normalisation
      // tensor is kept. The backward pass needs only y: ReLU6 passes gradient
      // exactly where 0 < y < 6, ReLU where y > 0.
      const ops::FoldedBatchNorm folded =
          ops::fold_batch_norm(gamma.data(), beta.data(), moving_mean, moving_variance, eps);
      const Tensor bias_data = bias.defined() ? bias.data() : Tensor();
      Tensor y = depthwise ? ops::depthwise_bn_relu6_inference(x.data(), kernel.data(), bias_data, folded, window, relu6)
                           : ops::conv2d_bn_relu6_inference(x.data(), kernel.data(), bias_data, folded, window, relu6);
      if (relu) y = ops::relu(y);
      if (!(gx || gk || gbias)) return Variable(std::move(y), false);
      return make_op_result(
          y, op, {x, kernel, bias, gamma, beta},
          [xd = x.data(), kd = kernel.data(), y, scale = folded.scale, window, relu6, activation, depthwise, gx, gk,
           gbias](const Tensor& grad) -> std::vector<Tensor> {
            const Tensor g = ops::channel_affine_backward(through_relu(grad, y, activation), y, scale, relu6);
            Tensor dx, dk, db;
            if (gx)
              dx = depthwise ? ops::depthwise_conv2d_backward_input(g, kd, xd.shape(), window)
                             : ops::conv2d_backward_input(g, kd, xd.shape(), window);
            if (gk)
              dk = depthwise ? ops::depthwise_conv2d_backward_kernel(g, xd, kd.shape(), window)
                             : ops::conv2d_backward_kernel(g, xd, kd.shape(), window);
            if (gbias) db = ops::sum(g, leading_axes(g.dim()));
            return {dx, dk, db, Tensor(), Tensor()};
          });
    }
    const Variable conv = depthwise ? depthwise_conv2d(x, kernel, bias, conv_options)
                                    : conv2d(x, kernel, bias, conv_options);
    return batch_norm_activation(conv, gamma, beta, moving_mean, moving_variance, bn_options, activation);
  }
  // Training: the batch statistics of the convolution without its bias (a
  // per-channel bias only moves the mean, see batch_norm_activation).
  ops::ConvBatchNormResult r =
      depthwise ? ops::depthwise_conv2d_batch_norm_training(x.data(), kernel.data(), window, gamma.data(), beta.data(),
                                                            eps, relu6)
                : ops::conv2d_batch_norm_training(x.data(), kernel.data(), window, gamma.data(), beta.data(), eps,
                                                  relu6);
  if (relu) r.y = ops::relu(r.y);
  ops::update_moving_statistics(moving_mean, moving_variance, mean_with_bias(r.mean, bias), r.biased_variance,
                                r.conv_out.numel() / r.conv_out.size(-1), bn_options.momentum);
  return make_op_result(
      r.y, op, {x, kernel, bias, gamma, beta},
      [xd = x.data(), kd = kernel.data(), gd = gamma.data(), bd = beta.data(), conv_out = r.conv_out, mean = r.mean,
       var = r.biased_variance, y = relu ? r.y : Tensor(), window, eps, relu6, activation, depthwise, gx, gk, gg, gb,
       gbias](const Tensor& grad) {
        const ops::BatchNormGrads g =
            ops::batch_norm_backward(through_relu(grad, y, activation), conv_out, gd, bd, mean, var, eps, relu6);
        Tensor dx, dk;
        if (gx)
          dx = depthwise ? ops::depthwise_conv2d_backward_input(g.x, kd, xd.shape(), window)
                         : ops::conv2d_backward_input(g.x, kd, xd.shape(), window);
        if (gk)
          dk = depthwise ? ops::depthwise_conv2d_backward_kernel(g.x, xd, kd.shape(), window)
                         : ops::conv2d_backward_kernel(g.x, xd, kd.shape(), window);
        return std::vector<Tensor>{dx, dk, gbias ? zeros(gd.shape(), gd.dtype(), gd.device()) : Tensor(), gg ? g.gamma : Tensor(),
                                   gb ? g.beta : Tensor()};
      });
}

namespace {

// Whether inverted_residual may run as one inference op: batch norms in
// inference mode, nothing to differentiate, the stages of the block's kinds.
bool block_runs_in_inference(const Variable& x, const std::vector<ConvBatchNormStage>& stages) {
  const std::size_t n = stages.size();
  if (n < 2 || n > 3 || needs_grad(x)) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const ConvBatchNormStage& s = stages[i];
    const ConvKind expected = i + 2 == n ? ConvKind::Depthwise : ConvKind::Conv2d;
    if (s.kind != expected || s.bn.training || s.activation == BatchNormActivation::Relu || !s.moving_mean ||
        !s.moving_variance || !s.gamma.defined() || !s.beta.defined() || !s.kernel.defined() ||
        s.kernel.dim() != 4)
      return false;
    for (const Variable* v : {&s.kernel, &s.bias, &s.gamma, &s.beta})
      if (needs_grad(*v)) return false;
  }
  return true;
}

}  // namespace

Variable inverted_residual(const Variable& x, const std::vector<ConvBatchNormStage>& stages, bool residual) {
  const char* op = "inverted_residual";
  check_defined(x, op);
  PETAL_CHECK(stages.size() == 2 || stages.size() == 3, ValueError, op,
              ": takes 2 or 3 stages (expand, depthwise, project), got ", stages.size());
  if (!block_runs_in_inference(x, stages)) {
    Variable h = x;
    for (const ConvBatchNormStage& s : stages) {
      PETAL_CHECK(s.moving_mean && s.moving_variance, ValueError, op, ": a stage has no moving statistics");
      h = conv_batch_norm(s.kind, h, s.kernel, s.bias, s.gamma, s.beta, *s.moving_mean, *s.moving_variance, s.conv,
                          s.bn, s.activation);
    }
    return residual ? add(h, x) : h;
  }
  PETAL_CHECK(x.dim() == 4, ShapeError, op, ": input must be 4-D [N, H, W, C], got ", shape_str(x.shape()));
  // Each stage's window from the spatial size its input will have.
  std::int64_t h = x.size(1), w = x.size(2);
  std::vector<ops::ConvBatchNormStageInputs> inputs;
  inputs.reserve(stages.size());
  for (const ConvBatchNormStage& s : stages) {
    ops::ConvBatchNormStageInputs in;
    in.kernel = &s.kernel.data();
    if (s.bias.defined()) in.bias = &s.bias.data();
    in.gamma = &s.gamma.data();
    in.beta = &s.beta.data();
    in.moving_mean = s.moving_mean;
    in.moving_variance = s.moving_variance;
    in.epsilon = s.bn.epsilon;
    in.window = ops::conv2d_window(h, w, s.kernel.size(0), s.kernel.size(1), s.conv.stride_h, s.conv.stride_w,
                                   s.conv.padding, op);
    in.relu6 = s.activation == BatchNormActivation::Relu6;
    h = (h + in.window.pad_top + in.window.pad_bottom - s.kernel.size(0)) / in.window.stride_h + 1;
    w = (w + in.window.pad_left + in.window.pad_right - s.kernel.size(1)) / in.window.stride_w + 1;
    inputs.push_back(std::move(in));
  }
  return Variable(ops::inverted_residual_inference(x.data(), inputs, residual), false);
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
