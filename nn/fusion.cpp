#include "nn/fusion.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <typeinfo>

#include "autograd/functions.hpp"
#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"
#include "nn/merge_layers.hpp"
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
  if (kind == Kind::Block) return out + (residual_add ? ": inverted_residual, residual" : ": inverted_residual");
  out += str_cat(": ", fused_op_name(producer));
  if (activation != Act::None) out += str_cat(" + ", ag::activation_name(activation));
  if (producer_bias(*this).defined()) out += ", bias folded";
  if (same_padding) out += ", same padding";
  return out;
}

namespace {

// Who reads each value slot of a plan: how many reads (a model output counts
// as many, so it is never fused away) and a step that reads it.
class SlotReaders {
 public:
  SlotReaders(const std::vector<FusionStep>& steps, const std::vector<int>& output_slots, int slot_count)
      : uses_(static_cast<std::size_t>(slot_count), 0) {
    for (std::size_t i = 0; i < steps.size(); ++i)
      for (int in : steps[i].inputs) {
        ++uses_[static_cast<std::size_t>(in)];
        reader_[in] = i;
      }
    for (int out : output_slots) uses_[static_cast<std::size_t>(out)] += 1000;
  }
  int uses(int slot) const { return uses_[static_cast<std::size_t>(slot)]; }
  // The step that reads s's one output when that value has no other use.
  std::optional<std::size_t> sole_reader(const FusionStep& s) const {
    if (s.outputs.size() != 1 || uses(s.outputs[0]) != 1) return std::nullopt;
    return reader_.at(s.outputs[0]);
  }

 private:
  std::vector<int> uses_;
  std::map<int, std::size_t> reader_;
};

// Drops the steps marked removed, keeping the order of the others.
void drop_removed(std::vector<FusionStep>& steps, const std::vector<bool>& removed) {
  std::vector<FusionStep> kept;
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(steps[i]));
  steps = std::move(kept);
}

// Whether s is a Fused convolution of kind `producer` with a k x k kernel
// (stride 1 unless any_stride) that a Block can take.
bool block_stage(const FusionStep& s, Producer producer, std::int64_t k, bool any_stride, bool activation_allowed) {
  if (s.kind != FusionStep::Kind::Fused || s.producer != producer) return false;
  const ConvGeometry g = conv_geometry(s);
  const bool activation_ok = s.activation == Act::None || (activation_allowed && s.activation == Act::Relu6);
  return g.kernel.h == k && g.kernel.w == k && (any_stride || (g.strides.h == 1 && g.strides.w == 1)) &&
         activation_ok;
}

// Rewrites chains of Fused steps that make an inverted-residual block (see
// the top of fusion.hpp) as Block steps.
void fuse_blocks(std::vector<FusionStep>& steps, const std::vector<int>& output_slots, int slot_count) {
  const SlotReaders readers(steps, output_slots, slot_count);
  auto only_reader = [&](const FusionStep& s) { return readers.sole_reader(s); };
  auto expand = [&](std::size_t i) { return block_stage(steps[i], Producer::Conv2D, 1, false, true); };
  auto depthwise = [&](std::size_t i) { return block_stage(steps[i], Producer::DepthwiseConv2D, 3, true, true); };
  auto project = [&](std::size_t i) { return block_stage(steps[i], Producer::Conv2D, 1, false, false); };

  std::vector<bool> removed(steps.size(), false);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (removed[i] || steps[i].inputs.size() != 1) continue;
    std::vector<std::size_t> chain;
    if (expand(i)) {
      const std::optional<std::size_t> dw = only_reader(steps[i]);
      if (dw && depthwise(*dw)) {
        const std::optional<std::size_t> pr = only_reader(steps[*dw]);
        if (pr && project(*pr)) chain = {i, *dw, *pr};
      }
    }
    if (chain.empty() && depthwise(i)) {
      const std::optional<std::size_t> pr = only_reader(steps[i]);
      if (pr && project(*pr)) chain = {i, *pr};
    }
    if (chain.empty()) continue;
    FusionStep block;
    block.kind = FusionStep::Kind::Block;
    block.layer = steps[i].layer;
    block.inputs = steps[i].inputs;
    block.outputs = steps[chain.back()].outputs;
    for (std::size_t k : chain) {
      block.chain.insert(block.chain.end(), steps[k].chain.begin(), steps[k].chain.end());
      block.stages.push_back(steps[k]);
    }
    // The residual: an Add (the class itself) of the projection and the block's input.
    if (const std::optional<std::size_t> add = only_reader(steps[chain.back()])) {
      const FusionStep& a = steps[*add];
      const bool is_add = a.kind == FusionStep::Kind::Call && a.layer && typeid(*a.layer) == typeid(Add);
      if (!removed[*add] && is_add && a.inputs.size() == 2 && a.outputs.size() == 1 &&
          (a.inputs[0] == block.inputs[0] || a.inputs[1] == block.inputs[0])) {
        block.residual_add = a.layer;
        block.outputs = a.outputs;
        block.chain.push_back(a.layer);
        removed[*add] = true;
      }
    }
    for (std::size_t k : chain) removed[k] = k != i;
    steps[i] = std::move(block);
  }
  drop_removed(steps, removed);
}

ag::Conv2dOptions conv_options(const FusionStep& step, const ConvGeometry& conv) {
  ag::Conv2dOptions options;
  options.stride_h = conv.strides.h;
  options.stride_w = conv.strides.w;
  options.padding = step.same_padding ? Padding::Same : conv.padding;
  return options;
}

const ag::Variable& conv_kernel(const FusionStep& step, const ConvGeometry& conv) {
  return conv.kind == ag::ConvKind::Conv2d ? static_cast<const Conv2D&>(*step.layer).kernel()
                                           : static_cast<const DepthwiseConv2D&>(*step.layer).depthwise_kernel();
}

ag::Variable run_block(const FusionStep& block, const ag::Variable& x) {
  bool batch_statistics = false;
  for (const FusionStep& s : block.stages) batch_statistics = batch_statistics || s.batch_norm->uses_batch_statistics();
  if (batch_statistics) {
    ag::Variable h = x;
    for (const FusionStep& s : block.stages) h = run_fused_step(s, h);
    return block.residual_add ? (*block.residual_add)(std::vector<ag::Variable>{x, h})[0] : h;
  }
  std::vector<ag::ConvBatchNormStage> stages;
  for (const FusionStep& s : block.stages) {
    const ConvGeometry conv = conv_geometry(s);
    stages.push_back(s.batch_norm->stage_after_conv(conv.kind, conv_kernel(s, conv), producer_bias(s),
                                                    conv_options(s, conv), s.activation));
  }
  return ag::inverted_residual(x, stages, block.residual_add != nullptr);
}

}  // namespace

void fuse_steps(std::vector<FusionStep>& steps, const std::vector<int>& output_slots, int slot_count) {
  const SlotReaders readers(steps, output_slots, slot_count);
  std::vector<bool> removed(steps.size(), false);
  // The step that reads s's one output when it is that value's only use and
  // reads nothing else, else null.
  auto only_reader = [&](const FusionStep& s) -> std::optional<std::size_t> {
    const std::optional<std::size_t> sole = readers.sole_reader(s);
    if (!sole) return std::nullopt;
    const std::size_t next = *sole;
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
            pad.outputs.size() != 1 || pad.outputs[0] != step.inputs[0] || readers.uses(pad.outputs[0]) != 1)
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
  drop_removed(steps, removed);
  fuse_blocks(steps, output_slots, slot_count);
}

ag::Variable run_fused_step(const FusionStep& step, const ag::Variable& x) {
  if (step.kind == FusionStep::Kind::Block) return run_block(step, x);
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
  return bn.forward_after_conv(conv.kind, x, conv_kernel(step, conv), producer_bias(step), conv_options(step, conv),
                               step.activation);
}

std::vector<std::string> fused_step_descriptions(const std::vector<FusionStep>& steps) {
  std::vector<std::string> out;
  for (const FusionStep& s : steps) {
    if (s.kind == FusionStep::Kind::Fused) out.push_back(s.description());
    if (s.kind == FusionStep::Kind::Block)
      for (const FusionStep& stage : s.stages) out.push_back(stage.description());
  }
  return out;
}

std::vector<std::string> fused_block_descriptions(const std::vector<FusionStep>& steps) {
  std::vector<std::string> out;
  for (const FusionStep& s : steps)
    if (s.kind == FusionStep::Kind::Block) out.push_back(s.description());
  return out;
}

void set_fusion(Module& model, bool enabled) {
  for (const auto& child : model.children()) set_fusion(*child, enabled);
  if (auto* sequential = dynamic_cast<Sequential*>(&model)) sequential->set_fusion(enabled);
  if (auto* functional = dynamic_cast<Model*>(&model)) functional->set_fusion(enabled);
}

}  // namespace petal::nn
