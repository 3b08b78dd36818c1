// Layer fusion (nn/fusion.hpp) on users' own networks: Sequential and
// functional models with Conv2D / DepthwiseConv2D / Dense -> BatchNormalization
// (-> ReLU / ReLU6 / Activation) chains run fused and unfused (nn::set_fusion)
// on the same weights, in inference, training and frozen-BN fine-tuning
// modes: the same outputs, the same gradient for every weight and the input,
// the same moving statistics after the step; and the plan names the chains it
// fused, so the fast path is known to be taken.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
#include "tests/nn/random_weights.hpp"

using namespace petal;
using namespace petal::nn;
using petal::test::random_tensor;
using petal::test::randomise;

namespace {

struct Outcome {
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<float>> grads;  // per weight (empty without one), then the input's
  std::vector<std::vector<float>> after;  // every weight after the step (moving statistics updated)
  std::vector<std::string> fused_steps;
};

std::vector<std::string> fused_steps_of(Module& model) {
  if (auto* s = dynamic_cast<Sequential*>(&model)) return s->fused_steps();
  return dynamic_cast<Model&>(model).fused_steps();
}

// One forward and backward pass of sum(output_i * seed_i) from the weights in
// `initial`, with fusion on or off.
Outcome run(Module& model, const Tensor& x_data, const std::vector<Tensor>& initial, bool fused, bool training) {
  set_fusion(model, fused);
  std::vector<WeightRef> weights = model.weights();
  for (std::size_t i = 0; i < weights.size(); ++i) {
    weights[i].variable.mutable_data().copy_(initial[i]);
    weights[i].variable.zero_grad();
  }
  model.set_training(training);
  const ag::Variable x(x_data, true);
  const std::vector<ag::Variable> outs = model(std::vector<ag::Variable>{x});
  ag::Variable objective;
  Outcome o;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    o.outputs.push_back(outs[i].data().to_vector<float>());
    const ag::Variable term = ag::sum(ag::mul(outs[i], ag::Variable(random_tensor(outs[i].shape(), 100 + i).to(outs[i].dtype()))));
    objective = objective.defined() ? ag::add(objective, term) : term;
  }
  objective.backward();
  for (const auto& w : weights)
    o.grads.push_back(w.variable.has_grad() ? w.variable.grad().to_vector<float>() : std::vector<float>{});
  o.grads.push_back(x.grad().to_vector<float>());
  for (const auto& w : weights) o.after.push_back(w.variable.data().to_vector<float>());
  o.fused_steps = fused_steps_of(model);
  return o;
}

double largest(const std::vector<std::vector<float>>& tensors) {
  double scale = 0.0;
  for (const auto& t : tensors)
    for (float v : t) scale = std::max(scale, double(std::fabs(v)));
  return scale;
}

// Every element within rtol of its own magnitude and of the tensor's largest
// one, or within atol: a gradient that is zero in exact arithmetic (a bias
// before a batch norm in training) is rounding noise on one side and exactly
// zero on the other, so atol scales with the model's largest gradient.
void check_close(const std::vector<float>& fused, const std::vector<float>& plain, double rtol, double atol,
                 const std::string& what) {
  INFO(what);
  REQUIRE(fused.size() == plain.size());
  const double scale = largest({plain});
  double worst = 0.0;
  for (std::size_t i = 0; i < plain.size(); ++i)
    worst = std::max(worst, std::fabs(double(fused[i]) - plain[i]) /
                                (1e-6 + atol + rtol * std::fabs(plain[i]) + rtol * scale));
  CHECK(worst <= 1.0);
}

// Fused and unfused runs of `model` agree in `mode` (outputs, moving
// statistics, and every gradient when `gradients`); returns the fused plan.
std::vector<std::string> check_fusion(Module& model, const Tensor& x, bool training, double rtol = 2e-5,
                                      bool gradients = true) {
  std::vector<Tensor> initial;
  for (const auto& w : model.weights()) initial.push_back(w.variable.data().clone());
  const Outcome fused = run(model, x, initial, true, training);
  const Outcome plain = run(model, x, initial, false, training);
  CHECK(plain.fused_steps.empty());
  const std::vector<WeightRef> weights = model.weights();
  for (std::size_t i = 0; i < fused.outputs.size(); ++i)
    check_close(fused.outputs[i], plain.outputs[i], rtol, 0.0, "output " + std::to_string(i));
  const double grad_atol = rtol * largest(plain.grads);
  for (std::size_t i = 0; gradients && i < fused.grads.size(); ++i) {
    const std::string name = i < weights.size() ? weights[i].name : "input";
    CHECK_MESSAGE(fused.grads[i].empty() == plain.grads[i].empty(), name);
    check_close(fused.grads[i], plain.grads[i], 10 * rtol, grad_atol, "gradient of " + name);
  }
  for (std::size_t i = 0; i < weights.size(); ++i)
    check_close(fused.after[i], plain.after[i], rtol, 0.0, weights[i].name + " after the step");
  set_fusion(model, true);
  return fused.fused_steps;
}

std::vector<std::string> expected_sequential_plan() {
  return {"conv_a -> bn_a -> relu_a: conv2d_batch_norm + relu, bias folded",
          "pad_b -> conv_b -> bn_b -> act_b: conv2d_batch_norm + relu6, same padding",
          "dw_c -> bn_c: depthwise_conv2d_batch_norm, bias folded",
          "bn_d -> relu_d: batch_norm + relu6",
          "dense_e -> bn_e -> act_e: dense_batch_norm + relu, bias folded",
          "dense_f -> bn_f: dense_batch_norm"};
}

std::shared_ptr<Sequential> sequential_net() {
  ConvOptions same_bias{.padding = Padding::Same, .name = "conv_a"};
  ConvOptions stride2{.strides = 2, .padding = Padding::Valid, .use_bias = false, .name = "conv_b"};
  DepthwiseConvOptions dw{.padding = Padding::Same, .name = "dw_c"};
  ConvOptions own_relu{.activation = "relu", .name = "conv_d"};
  auto bn = [](const char* name) { return std::make_shared<BatchNormalization>(BatchNormOptions{.name = name}); };
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{8, 8, 3}),
      std::make_shared<Conv2D>(6, 3, same_bias), bn("bn_a"), std::make_shared<ReLU>(std::nullopt, "relu_a"),
      std::make_shared<ZeroPadding2D>(0, 1, 0, 1, "pad_b"),  // "same" for 3x3 stride 2 at 8x8
      std::make_shared<Conv2D>(8, 3, stride2), bn("bn_b"), std::make_shared<Activation>("relu6", "act_b"),
      std::make_shared<DepthwiseConv2D>(3, dw), bn("bn_c"),
      // The activation sits before the normalisation: only BN + ReLU6 fuse.
      std::make_shared<Conv2D>(4, 1, own_relu), bn("bn_d"), std::make_shared<ReLU>(6.0, "relu_d"),
      std::make_shared<GlobalAveragePooling2D>("gap"),
      std::make_shared<Dense>(6, ActivationSpec{}, DenseOptions{.name = "dense_e"}), bn("bn_e"),
      std::make_shared<Activation>("relu", "act_e"),
      std::make_shared<Dense>(3, ActivationSpec{}, DenseOptions{.use_bias = false, .name = "dense_f"}), bn("bn_f")});
}

// A functional model where fusion must stop: a convolution read twice, a
// batch norm whose output is a model output, a layer with its own activation.
std::shared_ptr<Model> functional_net() {
  auto x = Input({7, 7, 4}, "image");
  auto c1 = layer<Conv2D>(5, 3, ConvOptions{.padding = Padding::Same, .name = "c1"})(x);
  auto r1 = layer<ReLU>(std::nullopt, "r1")(layer<BatchNormalization>(BatchNormOptions{.name = "b1"})(c1));
  auto side = layer<Conv2D>(5, 1, ConvOptions{.name = "side"})(c1);  // c1 has two readers: not fused into b1
  auto s = layer<Add>("sum")({r1, side});
  auto c2 = layer<Conv2D>(6, 3, ConvOptions{.strides = 2, .padding = Padding::Same, .name = "c2"})(s);
  auto b2 = layer<BatchNormalization>(BatchNormOptions{.name = "b2"})(c2);  // a model output: the ReLU stays apart
  auto r2 = layer<ReLU>(std::nullopt, "r2")(b2);
  auto d = layer<Dense>(4, ActivationSpec{}, DenseOptions{.name = "d"})(layer<GlobalAveragePooling2D>("g")(r2));
  auto rd = layer<Activation>("relu", "rd")(layer<BatchNormalization>(BatchNormOptions{.name = "bd"})(d));
  auto dr = layer<Dense>(3, "relu", DenseOptions{.name = "dr"})(rd);  // own activation: not fused with be
  auto be = layer<BatchNormalization>(BatchNormOptions{.name = "be"})(dr);
  return std::make_shared<Model>(std::vector{x}, std::vector{be, b2}, "branches");
}

std::vector<std::string> expected_functional_plan() {
  return {"b1 -> r1: batch_norm + relu", "c2 -> b2: conv2d_batch_norm, bias folded",
          "d -> bd -> rd: dense_batch_norm + relu, bias folded"};
}

}  // namespace

TEST_CASE("a user's Sequential Conv-BN-ReLU / Dense-BN-ReLU network runs fused, equal to its layers run apart") {
  auto model = sequential_net();
  randomise(*model, 1);
  CHECK(model->fused_steps() == expected_sequential_plan());
  const Tensor x = random_tensor({4, 8, 8, 3}, 2);
  for (bool training : {false, true}) {
    CAPTURE(training);
    CHECK(check_fusion(*model, x, training) == expected_sequential_plan());
  }
  SUBCASE("frozen batch norms run in inference mode inside a training step, fused as unfused") {
    for (const auto& layer : model->layers())
      if (dynamic_cast<BatchNormalization*>(layer.get())) layer->set_trainable(false);
    CHECK(check_fusion(*model, x, true) == expected_sequential_plan());
  }
  SUBCASE("fusion off: no fused step, and on again") {
    model->set_fusion(false);
    CHECK(model->fused_steps().empty());
    model->set_fusion(true);
    CHECK(model->fused_steps() == expected_sequential_plan());
  }
}

TEST_CASE("a functional network fuses only chains whose values nothing else reads") {
  auto model = functional_net();
  randomise(*model, 3);
  CHECK(model->fused_steps() == expected_functional_plan());
  const Tensor x = random_tensor({3, 7, 7, 4}, 4);
  for (bool training : {false, true}) {
    CAPTURE(training);
    CHECK(check_fusion(*model, x, training) == expected_functional_plan());
  }
  // Fine-tuning under frozen batch norms: the convolutions and dense layers
  // train (their biases too, through the folded shift), the BN layers do not.
  for (const char* bn : {"b1", "b2", "bd", "be"}) model->get_layer(bn)->set_trainable(false);
  check_fusion(*model, x, true);
}

TEST_CASE("a Sequential fuses layers added after it was built, and a nested model keeps its own plan") {
  Sequential model({std::make_shared<InputLayer>(Shape{5, 5, 2}),
                    std::make_shared<Conv2D>(3, 3, ConvOptions{.padding = Padding::Same, .name = "k"})});
  CHECK(model.fused_steps().empty());
  model.add(std::make_shared<BatchNormalization>(BatchNormOptions{.name = "n"}));
  CHECK(model.fused_steps() == std::vector<std::string>{"k -> n: conv2d_batch_norm, bias folded"});
  model.add(std::make_shared<ReLU>(std::nullopt, "r"));
  CHECK(model.fused_steps() == std::vector<std::string>{"k -> n -> r: conv2d_batch_norm + relu, bias folded"});

  auto inner = sequential_net();
  Sequential outer({inner, std::make_shared<Dense>(2, ActivationSpec{}, DenseOptions{.name = "head"})});
  randomise(outer, 9);
  CHECK(outer.fused_steps().empty());
  CHECK(inner->fused_steps() == expected_sequential_plan());
  check_fusion(outer, random_tensor({2, 8, 8, 3}, 10), true);  // set_fusion reaches the nested model
}

TEST_CASE("MobileNetV2 fuses every convolution with its batch norm (and ReLU6), padding included") {
  MobileNetV2Options options;
  options.input_shape = {32, 32, 3};
  options.alpha = 0.35;
  options.classes = 5;
  MobileNetV2 model(options);
  const std::vector<std::string> plan = model.fused_steps();
  CHECK(plan.size() == 52);  // Conv1, 2 + 16 * 3 block convolutions, Conv_1
  CHECK(plan.front() == "Conv1 -> bn_Conv1 -> Conv1_relu: conv2d_batch_norm + relu6");
  CHECK(std::count_if(plan.begin(), plan.end(), [](const std::string& s) { return s.find("same padding") != s.npos; }) ==
        4);  // block_1, 3, 6 and 13: the stride-2 depthwise convolutions
  randomise(model, 11);
  check_fusion(model, random_tensor({2, 32, 32, 3}, 12), false);
  // Training: with random weights, 52 batch norms on batch statistics turn
  // float32 rounding into visible differences (ReLU6 masks flip, few values
  // per normalised channel): at 32x32, batch 2 (pairs normalised at 1x1
  // pixels) the softmax differs by 0.25, and at 64x64, batch 4 the outputs
  // and moving statistics agree to 1e-4 while early kernel gradients differ
  // by about 1% (in float64 fused and unfused agree exactly). Each fused op's
  // gradients are checked on their own (tests/autograd/test_conv_grad.cpp)
  // and in the small networks above; here outputs and statistics.
  MobileNetV2Options larger = options;
  larger.input_shape = {64, 64, 3};
  MobileNetV2 trained(larger);
  randomise(trained, 11);
  check_fusion(trained, random_tensor({4, 64, 64, 3}, 12), true, 1e-4, false);
  // In float64 (the fused ops' reference paths) every gradient agrees too:
  // the plan wires each chain's weights, padding and statistics as the layers.
  for (auto w : model.weights()) w.variable.set_data(w.variable.data().to(DType::Float64));
  check_fusion(model, random_tensor({2, 32, 32, 3}, 13).to(DType::Float64), true, 1e-9);
}

namespace {

// Outputs of `model` on x without gradients (as predict runs), fused or not.
std::vector<float> inference_output(Module& model, const Tensor& x, bool fused) {
  set_fusion(model, fused);
  model.set_training(false);
  ag::NoGradGuard no_grad;
  const ag::Variable y = model(std::vector<ag::Variable>{ag::Variable(x)})[0];
  set_fusion(model, true);
  return y.data().to_vector<float>();
}

// A user's own inverted-residual network: an expanding block with a
// residual, a strided block whose Add is missing, and a depthwise -> project
// pair (no expansion) with biases on every convolution.
std::shared_ptr<Model> residual_net() {
  auto bn = [](const char* name) { return layer<BatchNormalization>(BatchNormOptions{.name = name}); };
  auto x = Input({11, 9, 8}, "image");
  auto e1 = layer<ReLU>(6.0, "e1_relu")(bn("e1_bn")(layer<Conv2D>(24, 1, ConvOptions{.name = "e1"})(x)));
  auto d1 = layer<ReLU>(6.0, "d1_relu")(
      bn("d1_bn")(layer<DepthwiseConv2D>(3, DepthwiseConvOptions{.padding = Padding::Same, .name = "d1"})(e1)));
  auto p1 = bn("p1_bn")(layer<Conv2D>(8, 1, ConvOptions{.name = "p1"})(d1));
  auto a1 = layer<Add>("a1")({x, p1});
  auto e2 = layer<ReLU>(6.0, "e2_relu")(bn("e2_bn")(layer<Conv2D>(20, 1, ConvOptions{.name = "e2"})(a1)));
  auto d2 = bn("d2_bn")(layer<DepthwiseConv2D>(3, DepthwiseConvOptions{.strides = 2, .padding = Padding::Same,
                                                                      .name = "d2"})(e2));
  auto p2 = bn("p2_bn")(layer<Conv2D>(12, 1, ConvOptions{.name = "p2"})(d2));
  auto d3 = layer<ReLU>(6.0, "d3_relu")(
      bn("d3_bn")(layer<DepthwiseConv2D>(3, DepthwiseConvOptions{.padding = Padding::Same, .name = "d3"})(p2)));
  auto p3 = bn("p3_bn")(layer<Conv2D>(5, 1, ConvOptions{.name = "p3"})(d3));
  return std::make_shared<Model>(std::vector{x}, std::vector{p3}, "residual_net");
}

}  // namespace

TEST_CASE("inverted-residual blocks run as one op in inference, equal to their layers run apart") {
  SUBCASE("a user's functional network") {
    auto model = residual_net();
    CHECK(model->fused_blocks() ==
          std::vector<std::string>{
              "e1 -> e1_bn -> e1_relu -> d1 -> d1_bn -> d1_relu -> p1 -> p1_bn -> a1: inverted_residual, residual",
              "e2 -> e2_bn -> e2_relu -> d2 -> d2_bn -> p2 -> p2_bn: inverted_residual",
              "d3 -> d3_bn -> d3_relu -> p3 -> p3_bn: inverted_residual"});
    CHECK(model->fused_steps().size() == 8);  // the blocks' steps are still listed
    randomise(*model, 21);
    for (std::int64_t batch : {1, 3}) {
      const Tensor x = random_tensor({batch, 11, 9, 8}, 22);
      check_close(inference_output(*model, x, true), inference_output(*model, x, false), 2e-5, 0.0, "outputs");
    }
    // Training and gradients run the blocks' steps one by one: as before.
    check_fusion(*model, random_tensor({2, 11, 9, 8}, 23), false);
    check_fusion(*model, random_tensor({2, 11, 9, 8}, 24), true);
  }
  SUBCASE("MobileNetV2: 17 blocks, 10 with their residual") {
    MobileNetV2Options options;
    options.input_shape = {64, 64, 3};
    options.alpha = 0.35;
    options.classes = 5;
    MobileNetV2 model(options);
    const std::vector<std::string> blocks = model.fused_blocks();
    CHECK(blocks.size() == 17);
    CHECK(std::count_if(blocks.begin(), blocks.end(),
                        [](const std::string& s) { return s.find(", residual") != s.npos; }) == 10);
    CHECK(blocks.front() ==
          "expanded_conv_depthwise -> expanded_conv_depthwise_BN -> expanded_conv_depthwise_relu -> "
          "expanded_conv_project -> expanded_conv_project_BN: inverted_residual");
    randomise(model, 25);
    for (std::int64_t batch : {1, 2, 5}) {
      const Tensor x = random_tensor({batch, 64, 64, 3}, 26);
      check_close(inference_output(model, x, true), inference_output(model, x, false), 1e-4, 0.0, "probabilities");
    }
  }
}

TEST_CASE("inference sees weights changed in place: kept folds of batch norms and kernels are recomputed") {
  // Inference keeps each folded batch norm and folded depthwise kernel while
  // its inputs hold the same bytes (kernels/derived_cache.hpp). After a write
  // of any kind, the output must be that of a fresh model holding the new
  // weights.
  auto model = residual_net();
  randomise(*model, 31);
  const Tensor x = random_tensor({1, 11, 9, 8}, 32);
  auto fresh_output = [&] {
    auto other = residual_net();
    std::vector<WeightRef> theirs = other->weights(), ours = model->weights();
    for (std::size_t i = 0; i < ours.size(); ++i) theirs[i].variable.mutable_data().copy_(ours[i].variable.data());
    return inference_output(*other, x, true);
  };
  for (int call = 0; call < 3; ++call) inference_output(*model, x, true);  // kept from the second call on
  std::vector<float> previous = inference_output(*model, x, true);
  check_close(previous, fresh_output(), 0.0, 0.0, "unchanged weights");
  int changed = 0, outputs_changed = 0;
  for (WeightRef w : model->weights()) {
    const std::string& n = w.name;
    const bool bn = n.find("moving_variance") != n.npos || n.find("moving_mean") != n.npos ||
                    n.find("gamma") != n.npos || n.find("beta") != n.npos;
    const bool depthwise_kernel = n.find("d1/") != n.npos && n.find("kernel") != n.npos;
    if (!bn && !depthwise_kernel) continue;
    INFO("weight " << n);
    // Three ways of writing: through a pointer, copy_, fill_ of a view.
    Tensor& data = w.variable.mutable_data();
    if (changed % 3 == 0) {
      data.data<float>()[0] += 0.25f;
    } else if (changed % 3 == 1) {
      data.copy_(ops::mul_scalar(data, 1.125));
    } else {
      data.slice(0, 0, 1).fill_(0.75);
    }
    ++changed;
    const std::vector<float> after = inference_output(*model, x, true);
    check_close(after, fresh_output(), 0.0, 0.0, "after the write");
    outputs_changed += after != previous;  // (a channel that ReLU6 clips everywhere does not show)
    previous = after;
  }
  CHECK(changed >= 12);
  CHECK(outputs_changed >= changed * 3 / 4);
}
