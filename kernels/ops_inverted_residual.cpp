// The inverted-residual block's inference op (see ops_conv.hpp and, for the
// kernel, kernels/cpu/conv/inverted_residual.hpp).
#include "core/error.hpp"
#include "kernels/cpu/conv/inverted_residual.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"
#include "kernels/ops_conv_common.hpp"

namespace petal::ops {

using namespace detail;

namespace {

bool cpu_float32(const Tensor& t) { return !t.defined() || (t.dtype() == DType::Float32 && t.device().is_cpu()); }

bool channel_vector(const Tensor& t, std::int64_t channels) {
  return !t.defined() || (t.dim() == 1 && t.size(0) == channels && cpu_float32(t));
}

// A stage whose operands are float32 CPU tensors shaped for a kernel of
// kh x kw x in_c x out_c (out_c 1 for a depthwise kernel, whose channels
// come from in_c).
bool stage_fits(const FoldedConvStage& s, std::int64_t kh, std::int64_t kw, std::int64_t in_c, std::int64_t out_c) {
  const Tensor& k = s.kernel;
  const std::int64_t channels = out_c == 1 ? in_c : out_c;
  return k.defined() && cpu_float32(k) && k.dim() == 4 && k.size(0) == kh && k.size(1) == kw && k.size(2) == in_c &&
         k.size(3) == out_c && channel_vector(s.bias, channels) && s.bn.scale.defined() && s.bn.shift.defined() &&
         channel_vector(s.bn.scale, channels) && channel_vector(s.bn.shift, channels);
}

bool pointwise_window(const Conv2dWindow& w) {
  return w.stride_h == 1 && w.stride_w == 1 && w.pad_top == 0 && w.pad_bottom == 0 && w.pad_left == 0 &&
         w.pad_right == 0;
}

// Output size along one axis of a 3x3 window, or -1 when it does not fit.
std::int64_t depthwise_output(std::int64_t in, std::int64_t stride, std::int64_t before, std::int64_t after) {
  const std::int64_t span = in + before + after - 3;
  return span < 0 ? -1 : span / stride + 1;
}

// The folded shift of a GEMM stage: bias * scale + shift (bias may be undefined).
Tensor gemm_shift(const FoldedConvStage& s) {
  const Tensor shift = s.bn.shift.contiguous();
  return s.bias.defined() ? add(mul(s.bias, s.bn.scale), shift) : shift;
}

Tensor run_stages(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                  const FoldedConvStage& project, bool residual) {
  Tensor h = x;
  if (expand) h = conv2d_bn_relu6_inference(h, expand->kernel, expand->bias, expand->bn, expand->window, expand->relu6);
  h = depthwise_bn_relu6_inference(h, depthwise.kernel, depthwise.bias, depthwise.bn, depthwise.window,
                                   depthwise.relu6);
  Tensor y = conv2d_bn_relu6_inference(h, project.kernel, project.bias, project.bn, project.window, project.relu6);
  if (!residual) return y;
  PETAL_CHECK(y.shape() == x.shape(), ShapeError, "inverted_residual_inference: the residual needs the block's output ",
              shape_str(y.shape()), " to equal its input ", shape_str(x.shape()));
  return add(y, x);
}

}  // namespace

bool inverted_residual_runs_fused(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                                  const FoldedConvStage& project, bool residual) {
  if (!cpu_float32(x) || !x.defined() || x.dim() != 4 || x.numel() == 0) return false;
  const std::int64_t in_c = x.size(3);
  std::int64_t channels = in_c;
  if (expand) {
    if (!pointwise_window(expand->window) || !expand->kernel.defined() || expand->kernel.dim() != 4) return false;
    channels = expand->kernel.size(3);
    if (!stage_fits(*expand, 1, 1, in_c, channels)) return false;
  }
  const Conv2dWindow& w = depthwise.window;
  if (!stage_fits(depthwise, 3, 3, channels, 1) || w.stride_h != w.stride_w || (w.stride_h != 1 && w.stride_h != 2) ||
      w.pad_top < 0 || w.pad_bottom < 0 || w.pad_left < 0 || w.pad_right < 0 || w.pad_top > 2 || w.pad_left > 2)
    return false;
  const std::int64_t out_h = depthwise_output(x.size(1), w.stride_h, w.pad_top, w.pad_bottom);
  const std::int64_t out_w = depthwise_output(x.size(2), w.stride_w, w.pad_left, w.pad_right);
  if (out_h <= 0 || out_w <= 0) return false;
  if (project.relu6 || !pointwise_window(project.window) || !project.kernel.defined() || project.kernel.dim() != 4)
    return false;
  const std::int64_t out_c = project.kernel.size(3);
  if (!stage_fits(project, 1, 1, channels, out_c)) return false;
  return !residual || (out_h == x.size(1) && out_w == x.size(2) && out_c == in_c);
}

Tensor inverted_residual_inference(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                                   const FoldedConvStage& project, bool residual) {
  if (!inverted_residual_runs_fused(x, expand, depthwise, project, residual))
    return run_stages(x, expand, depthwise, project, residual);
  const char* op = "inverted_residual_inference";
  const Conv2dWindow& w = depthwise.window;
  cpu::InvertedResidualBlock b;
  b.batch = x.size(0), b.in_h = x.size(1), b.in_w = x.size(2), b.in_c = x.size(3);
  b.expanded_c = expand ? expand->kernel.size(3) : b.in_c;
  b.stride = w.stride_h;
  b.pad_top = w.pad_top, b.pad_left = w.pad_left;
  b.out_h = depthwise_output(b.in_h, w.stride_h, w.pad_top, w.pad_bottom);
  b.out_w = depthwise_output(b.in_w, w.stride_w, w.pad_left, w.pad_right);
  b.out_c = project.kernel.size(3);
  b.residual = residual;

  const Tensor xc = x.contiguous();
  Tensor expand_kernel, expand_scale, expand_shift;
  if (expand) {
    expand_kernel = expand->kernel.contiguous();
    expand_scale = expand->bn.scale.contiguous();
    expand_shift = gemm_shift(*expand);
    b.expand_kernel = expand_kernel.data<float>();
    b.expand_scale = expand_scale.data<float>();
    b.expand_shift = expand_shift.data<float>();
    b.expand_relu6 = expand->relu6;
  }
  // 9 * C floats, kept between calls (fold_into_kernel), unlike the GEMM
  // kernels, whose scale the GEMM epilogue applies.
  const FoldedConv folded = fold_into_kernel(depthwise.kernel, depthwise.bias, depthwise.bn, b.expanded_c, op);
  b.depthwise_kernel = folded.kernel.data<float>();
  b.depthwise_bias = folded.bias.data<float>();
  b.depthwise_relu6 = depthwise.relu6;
  const Tensor project_kernel = project.kernel.contiguous(), project_scale = project.bn.scale.contiguous(),
               project_shift = gemm_shift(project);
  b.project_kernel = project_kernel.data<float>();
  b.project_scale = project_scale.data<float>();
  b.project_shift = project_shift.data<float>();

  Tensor y = Tensor::empty({b.batch, b.out_h, b.out_w, b.out_c}, DType::Float32);
  cpu::inverted_residual_forward(xc.data<float>(), y.data<float>(), b);
  return y;
}

}  // namespace petal::ops
