// Layer fusion: the one step that lets every model run its layers through
// the fused autograd ops. Sequential and Model (MobileNetV2 included) compile
// their layers into a plan of steps when they are built and run that plan in
// training and inference alike; fuse_steps rewrites it in place:
//
//   Conv2D | DepthwiseConv2D -> BatchNormalization (-> activation)
//       one ag::conv_batch_norm (statistics gathered as the convolution
//       writes in training, the folded one-pass kernel in inference); a
//       ZeroPadding2D just before a 'valid' convolution that equals its
//       "same" padding is applied by the convolution.
//   Dense -> BatchNormalization (-> activation)
//       the product without bias, then one ag::batch_norm_activation.
//   BatchNormalization -> activation
//       one ag::batch_norm_activation.
//
// The activation is a ReLU layer (ReLU6 with max_value 6) or an Activation
// layer of "relu" or "relu6". The convolution or dense layer must have no
// activation of its own (Conv2D(..., activation="relu") -> BN puts the
// activation before the normalisation: not this pattern) and may have a bias
// (folded: see ag::batch_norm_activation); a depthwise one must have
// depth_multiplier 1. Every value inside a chain must feed only the next layer
// of the chain and must not be a model output, so a layer whose output is read
// elsewhere is never fused away. The batch norm decides its mode at run time
// as unfused (batch statistics only when training() && trainable(): a frozen
// BN runs in inference mode), with the same moving-statistics updates.
// Results equal the unfused layers' within float rounding.
//
// Then chains of fused steps that make MobileNetV2's inverted-residual block
// become one Block step:
//
//   [1x1 Conv2D + BN (+ ReLU6)] -> 3x3 DepthwiseConv2D + BN (+ ReLU6)
//       -> 1x1 Conv2D + BN (-> Add with the block's input)
//
// (stride 1 for the 1x1 convolutions, any stride for the depthwise one; the
// expansion is optional; the same rule that every value inside the chain
// feeds only the next step holds). A Block runs as ag::inverted_residual
// when no batch norm of it uses batch statistics: in inference with nothing
// to differentiate that is one pass per band of rows with the expanded
// tensor kept in cache; otherwise its steps run one after the other.
#pragma once

#include <string>
#include <vector>

#include "autograd/conv_functions.hpp"
#include "nn/module.hpp"

namespace petal::nn {

class BatchNormalization;

// One step of a model's plan: a layer call, or a fused chain.
struct FusionStep {
  enum class Kind { Call, Fused, Block };
  // The layer that starts a fused chain.
  enum class Producer { None, Conv2D, DepthwiseConv2D, Dense };
  Kind kind = Kind::Call;
  Module* layer = nullptr;  // Call: the layer; Fused: the producer (null for a BN + activation pair)
  Producer producer = Producer::None;
  BatchNormalization* batch_norm = nullptr;
  ag::BatchNormActivation activation = ag::BatchNormActivation::None;
  bool same_padding = false;         // a fused ZeroPadding2D: run the convolution with "same" padding
  std::vector<const Module*> chain;  // Fused: the layers it stands for, in order
  std::vector<int> inputs;           // value slots
  std::vector<int> outputs;
  std::vector<int> last_reads;  // slots no later step reads: dropped after this one
  // Block: its Fused steps in order, and the Add layer of the residual (or null).
  std::vector<FusionStep> stages;
  Module* residual_add = nullptr;

  // "pad -> conv -> bn -> relu: conv2d_batch_norm + relu, bias folded, same padding"
  std::string description() const;
};

// Rewrites a plan (steps in an order that runs, each reading and writing
// value slots; output_slots are the model's outputs) with every fusable chain
// as one Fused step.
void fuse_steps(std::vector<FusionStep>& steps, const std::vector<int>& output_slots, int slot_count);

// Runs a Fused or Block step on its input.
ag::Variable run_fused_step(const FusionStep& step, const ag::Variable& x);

// The descriptions of a plan's Fused steps, in order, those inside Blocks included.
std::vector<std::string> fused_step_descriptions(const std::vector<FusionStep>& steps);
// The descriptions of a plan's Block steps, in order
// ("block_1_expand -> ... -> block_1_project_BN: inverted_residual").
std::vector<std::string> fused_block_descriptions(const std::vector<FusionStep>& steps);

// Turns fusion on (the default) or off for `model` and every Sequential and
// Model inside it. Off, every layer runs as its own op: the reference that
// the fused plan is tested against, and a switch for debugging.
void set_fusion(Module& model, bool enabled);

}  // namespace petal::nn
