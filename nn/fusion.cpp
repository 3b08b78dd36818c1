#include "nn/fusion.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>

#include "autograd/functions.hpp"
#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"
#include "nn/model.hpp"
#include "nn/sequential.hpp"

namespace petal::nn {

namespace {

using Producer = FusionStep::Producer;
using Act = ag::BatchNormActivation;

// A layer that a following BatchNormalization can absorb: no activation of
// its own, one output channel per input channel for a depthwise one.
Producer producer_of(const Module* layer) {
  if (const auto* conv = dynamic_cast<const Conv2D*>(layer))
    return conv->options().activation.kind == ActivationKind::Linear ? Producer::Conv2D : Producer::None;
  if (const auto* conv = dynamic_cast<const DepthwiseConv2D*>(layer)) {
    const DepthwiseConvOptions& o = conv->options();
    return o.activation.kind == ActivationKind::Linear && o.depth_multiplier == 1 ? Producer::DepthwiseConv2D
                                                                                   : Producer::None;
  }
  if (const auto* dense = dynamic_cast<const Dense*>(layer))
    return dense->activation() == ActivationKind::Linear ? Producer::Dense : Producer::None;
  return Producer::None;
}

// The activation a layer applies, when a fused batch norm can apply it.
std::optional<Act> activation_of(const Module* layer) {
  if (const auto* relu = dynamic_cast<const ReLU*>(layer)) return relu->is_relu6() ? Act::Relu6 : Act::Relu;
  if (const auto* act = dynamic_cast<const Activation*>(layer)) {
    if (act->activation() == ActivationKind::Relu) return Act::Relu;
    if (act->activation() == ActivationKind::Relu6) return Act::Relu6;
  }
  return std::nullopt;
}

struct ConvGeometry {
  ag::ConvKind kind;
  Size2 kernel, strides;
  Padding padding;
};

ConvGeometry conv_geometry(const FusionStep& step) {
  if (step.producer == Producer::Conv2D) {
    const auto& conv = static_cast<const Conv2D&>(*step.layer);
    return {ag::ConvKind::Conv2d, conv.kernel_size(), conv.options().strides, conv.options().padding};
  }
  const auto& conv = static_cast<const DepthwiseConv2D&>(*step.layer);
  return {ag::ConvKind::Depthwise, conv.kernel_size(), conv.options().strides, conv.options().padding};
}

// Whether zero padding (top, bottom, left, right) of a (height, width) input
// followed by a 'valid' convolution equals TensorFlow's "same" padding.
bool pads_as_same(const ZeroPadding2D& pad, const Shape& in, const ConvGeometry& conv) {
  auto same = [](std::int64_t size, std::int64_t k, std::int64_t s, std::int64_t before, std::int64_t after) {
    const std::int64_t out = (size + s - 1) / s;
    const std::int64_t total = std::max<std::int64_t>((out - 1) * s + k - size, 0);
    return before == total / 2 && after == total - total / 2;
  };
  return in.size() == 3 && same(in[0], conv.kernel.h, conv.strides.h, pad.top(), pad.bottom()) &&
         same(in[1], conv.kernel.w, conv.strides.w, pad.left(), pad.right());
}

const ag::Variable& producer_bias(const FusionStep& step) {
  static const ag::Variable none;
  switch (step.producer) {
    case Producer::Conv2D: return static_cast<const Conv2D&>(*step.layer).bias();
    case Producer::DepthwiseConv2D: return static_cast<const DepthwiseConv2D&>(*step.layer).bias();
    case Producer::Dense: return static_cast<const Dense&>(*step.layer).bias();
    case Producer::None: break;
  }
  return none;
}

const char* fused_op_name(Producer producer) {
  switch (producer) {
    case Producer::Conv2D: return "conv2d_batch_norm";
    case Producer::DepthwiseConv2D: return "depthwise_conv2d_batch_norm";
    case Producer::Dense: return "dense_batch_norm";
    case Producer::None: break;
  }
  return "batch_norm";
}

}  // namespace

std::string FusionStep::description() const {
  if (kind == Kind::Call) return layer->name();
  std::string out;
  for (std::size_t i = 0; i < chain.size(); ++i) out += (i ? " -> " : "") + chain[i]->name();
  out += str_cat(": ", fused_op_name(producer));
  if (activation != Act::None) out += str_cat(" + ", ag::activation_name(activation));
  if (producer_bias(*this).defined()) out += ", bias folded";
  if (same_padding) out += ", same padding";
  return out;
}

void fuse_steps(std::vector<FusionStep>& steps, const std::vector<int>& output_slots, int slot_count) {
  std::vector<int> uses(static_cast<std::size_t>(slot_count), 0);
  for (const FusionStep& s : steps)
    for (int in : s.inputs) ++uses[static_cast<std::size_t>(in)];
  for (int out : output_slots) uses[static_cast<std::size_t>(out)] += 1000;  // never fused away
  std::map<int, std::size_t> reader;  // a step that reads the slot (the only one where it matters)
  for (std::size_t i = 0; i < steps.size(); ++i)
    for (int in : steps[i].inputs) reader[in] = i;
  std::vector<bool> removed(steps.size(), false);
  // The step that reads s's one output when it is that value's only use and
  // reads nothing else, else null.
  auto only_reader = [&](const FusionStep& s) -> std::optional<std::size_t> {
    if (s.outputs.size() != 1 || uses[static_cast<std::size_t>(s.outputs[0])] != 1) return std::nullopt;
    const std::size_t next = reader.at(s.outputs[0]);
    const FusionStep& n = steps[next];
    if (removed[next] || n.kind != FusionStep::Kind::Call || n.inputs.size() != 1) return std::nullopt;
    return next;
  };
  // The activation step that can follow the batch norm step `bn`, if any.
  auto activation_after = [&](const FusionStep& bn) -> std::optional<std::size_t> {
    const std::optional<std::size_t> next = only_reader(bn);
    if (!next || !activation_of(steps[*next].layer)) return std::nullopt;
    return next;
  };

  for (std::size_t i = 0; i < steps.size(); ++i) {
    FusionStep& step = steps[i];
    if (removed[i] || step.kind != FusionStep::Kind::Call) continue;
    FusionStep fused;
    fused.kind = FusionStep::Kind::Fused;
    fused.inputs = step.inputs;
    std::optional<std::size_t> bn_index, act_index;
    const Producer producer = producer_of(step.layer);
    if (producer != Producer::None) {
      bn_index = only_reader(step);
      if (!bn_index || !dynamic_cast<BatchNormalization*>(steps[*bn_index].layer)) continue;
      act_index = activation_after(steps[*bn_index]);
      fused.layer = step.layer;
      fused.producer = producer;
      fused.chain.push_back(step.layer);
    } else if (dynamic_cast<BatchNormalization*>(step.layer)) {
      act_index = activation_after(step);
      if (!act_index) continue;  // a batch norm alone is already one op
      bn_index = i;
    } else {
      continue;
    }
    FusionStep& bn = steps[*bn_index];
    fused.batch_norm = static_cast<BatchNormalization*>(bn.layer);
    fused.chain.push_back(bn.layer);
    fused.outputs = bn.outputs;
    if (*bn_index != i) removed[*bn_index] = true;
    if (act_index) {
      FusionStep& act = steps[*act_index];
      fused.activation = *activation_of(act.layer);
      fused.chain.push_back(act.layer);
      fused.outputs = act.outputs;
      removed[*act_index] = true;
    }
    // A zero padding just before a 'valid' convolution, equal to "same".
    if (producer == Producer::Conv2D || producer == Producer::DepthwiseConv2D) {
      const ConvGeometry conv = conv_geometry(fused);
      for (std::size_t p = 0; conv.padding == Padding::Valid && p < i; ++p) {
        FusionStep& pad = steps[p];
        const auto* zero_pad = dynamic_cast<const ZeroPadding2D*>(pad.layer);
        if (removed[p] || pad.kind != FusionStep::Kind::Call || !zero_pad || pad.inputs.size() != 1 ||
            pad.outputs.size() != 1 || pad.outputs[0] != step.inputs[0] ||
            uses[static_cast<std::size_t>(pad.outputs[0])] != 1)
          continue;
        if (!pads_as_same(*zero_pad, zero_pad->input_shape(), conv)) continue;
        fused.same_padding = true;
        fused.inputs = pad.inputs;
        fused.chain.insert(fused.chain.begin(), pad.layer);
        removed[p] = true;
      }
    }
    step = std::move(fused);
  }
  std::vector<FusionStep> kept;
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(steps[i]));
  steps = std::move(kept);
}

ag::Variable run_fused_step(const FusionStep& step, const ag::Variable& x) {
  BatchNormalization& bn = *step.batch_norm;
  switch (step.producer) {
    case Producer::None: return bn.forward_fused(x, step.activation);
    case Producer::Dense: {
      const auto& dense = static_cast<const Dense&>(*step.layer);
      return bn.forward_fused(dense.kernel_product(x), step.activation, dense.bias());
    }
    case Producer::Conv2D:
    case Producer::DepthwiseConv2D: break;
  }
  const ConvGeometry conv = conv_geometry(step);
  ag::Conv2dOptions options;
  options.stride_h = conv.strides.h;
  options.stride_w = conv.strides.w;
  options.padding = step.same_padding ? Padding::Same : conv.padding;
  const ag::Variable& kernel = conv.kind == ag::ConvKind::Conv2d
                                   ? static_cast<const Conv2D&>(*step.layer).kernel()
                                   : static_cast<const DepthwiseConv2D&>(*step.layer).depthwise_kernel();
  return bn.forward_after_conv(conv.kind, x, kernel, producer_bias(step), options, step.activation);
}

std::vector<std::string> fused_step_descriptions(const std::vector<FusionStep>& steps) {
  std::vector<std::string> out;
  for (const FusionStep& s : steps)
    if (s.kind == FusionStep::Kind::Fused) out.push_back(s.description());
  return out;
}

void set_fusion(Module& model, bool enabled) {
  for (const auto& child : model.children()) set_fusion(*child, enabled);
  if (auto* sequential = dynamic_cast<Sequential*>(&model)) sequential->set_fusion(enabled);
  if (auto* functional = dynamic_cast<Model*>(&model)) functional->set_fusion(enabled);
}

}  // namespace petal::nn
