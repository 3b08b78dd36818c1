// Every convolution-family autograd op through the float64 finite-difference
// gradient check: small random shapes with odd sizes, stride 2 on even and
// odd inputs, batch 1 and batch > 1, with and without bias; batch norm in
// training and inference mode, with and without the fused ReLU6.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/conv_functions.hpp"
#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"

using namespace petal;
using namespace petal::ag;

namespace {

Variable leaf(const Shape& shape, Generator& gen, double low = -1.0, double high = 1.0) {
  return Variable(uniform(shape, low, high, gen, DType::Float64), true);
}

// Stride 2, "same" padding: the asymmetric TensorFlow padding case.
Conv2dOptions stride2_same() {
  Conv2dOptions co;
  co.stride_h = co.stride_w = 2;
  co.padding = Padding::Same;
  return co;
}

double max_abs_difference(const Tensor& actual, const Tensor& expected) {
  const std::vector<float> a = actual.to_vector<float>(), e = expected.to_vector<float>();
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - e[i])));
  return worst;
}

void require_ok(const GradcheckResult& r, const std::string& what) {
  INFO(what << ": " << r.message << " (max abs error " << r.max_abs_error << ")");
  CHECK(r.ok);
}

struct ConvGradCase {
  Shape x;
  std::int64_t kh, kw, out_c, stride;
  Padding padding;
  bool bias;
};

std::string describe(const ConvGradCase& c) {
  return shape_str(c.x) + " k" + std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" + std::to_string(c.stride) +
         (c.padding == Padding::Same ? " same" : " valid") + (c.bias ? " +bias" : "");
}

const std::vector<ConvGradCase>& conv_cases() {
  static const std::vector<ConvGradCase> cases = {
      {{1, 4, 4, 2}, 3, 3, 3, 2, Padding::Same, true},    // stride 2, even input: bottom/right padding
      {{2, 5, 5, 2}, 3, 3, 2, 2, Padding::Same, false},   // stride 2, odd input, batch 2
      {{2, 5, 4, 3}, 3, 3, 2, 1, Padding::Valid, true},   // valid, odd sizes
      {{1, 3, 5, 4}, 1, 1, 3, 1, Padding::Same, true},    // pointwise
      {{2, 6, 5, 3}, 2, 3, 2, 2, Padding::Same, true},    // non-square kernel
  };
  return cases;
}

}  // namespace

TEST_CASE("gradcheck conv2d") {
  Generator gen(51);
  for (const ConvGradCase& c : conv_cases()) {
    Conv2dOptions o;
    o.stride_h = o.stride_w = c.stride;
    o.padding = c.padding;
    std::vector<Variable> inputs = {leaf(c.x, gen), leaf({c.kh, c.kw, c.x[3], c.out_c}, gen)};
    if (c.bias) inputs.push_back(leaf({c.out_c}, gen));
    require_ok(gradcheck([&](const std::vector<Variable>& v) { return conv2d(v[0], v[1], c.bias ? v[2] : Variable(), o); },
                         inputs),
               "conv2d " + describe(c));
  }
}

TEST_CASE("gradcheck depthwise_conv2d (multiplier 1 and 2)") {
  Generator gen(52);
  for (const ConvGradCase& c : conv_cases()) {
    for (std::int64_t multiplier : {1, 2}) {
      Conv2dOptions o;
      o.stride_h = o.stride_w = c.stride;
      o.padding = c.padding;
      std::vector<Variable> inputs = {leaf(c.x, gen), leaf({c.kh, c.kw, c.x[3], multiplier}, gen)};
      if (c.bias) inputs.push_back(leaf({c.x[3] * multiplier}, gen));
      require_ok(gradcheck([&](const std::vector<Variable>& v) {
                   return depthwise_conv2d(v[0], v[1], c.bias ? v[2] : Variable(), o);
                 },
                           inputs),
                 "depthwise_conv2d x" + std::to_string(multiplier) + " " + describe(c));
    }
  }
}

TEST_CASE("gradcheck batch norm, training and inference, with and without ReLU6") {
  Generator gen(53);
  for (const Shape& shape : {Shape{2, 3, 3, 4}, Shape{1, 5, 3, 3}, Shape{6, 5}}) {
    const std::int64_t c = shape.back();
    for (bool training : {true, false}) {
      for (bool relu6 : {false, true}) {
        Tensor moving_mean = uniform({c}, -0.5, 0.5, gen, DType::Float64);
        Tensor moving_var = uniform({c}, 0.5, 2.0, gen, DType::Float64);
        BatchNormOptions o;
        o.training = training;
        // Values spread over [-2, 8] after the affine map put some outputs in each ReLU6 region.
        const std::vector<Variable> inputs = {leaf(shape, gen), leaf({c}, gen, 0.5, 3.0), leaf({c}, gen, 0.0, 5.0)};
        require_ok(gradcheck(
                       [&](const std::vector<Variable>& v) {
                         return relu6 ? batch_norm_relu6(v[0], v[1], v[2], moving_mean, moving_var, o)
                                      : batch_norm(v[0], v[1], v[2], moving_mean, moving_var, o);
                       },
                       inputs),
                   std::string("batch_norm ") + shape_str(shape) + (training ? " training" : " inference") +
                       (relu6 ? " + relu6" : ""));
      }
    }
  }
}

TEST_CASE("gradcheck padding, pooling and dropout") {
  Generator gen(54);
  const Variable x = leaf({2, 5, 4, 3}, gen);
  require_ok(gradcheck([](const std::vector<Variable>& v) { return zero_pad2d(v[0], 1, 0, 2, 1); }, {x}), "zero_pad2d");
  require_ok(gradcheck([](const std::vector<Variable>& v) { return global_average_pool2d(v[0]); }, {x}),
             "global_average_pool2d");
  for (Padding padding : {Padding::Same, Padding::Valid}) {
    for (std::int64_t stride : {1, 2}) {
      Conv2dOptions o;
      o.stride_h = o.stride_w = stride;
      o.padding = padding;
      const std::string label = std::string(padding == Padding::Same ? " same" : " valid") + " s" +
                                std::to_string(stride);
      require_ok(gradcheck([&](const std::vector<Variable>& v) { return average_pool2d(v[0], 3, 2, o); }, {x}),
                 "average_pool2d" + label);
      require_ok(gradcheck([&](const std::vector<Variable>& v) { return max_pool2d(v[0], 2, 3, o); }, {x}),
                 "max_pool2d" + label);
    }
  }
  require_ok(gradcheck(
                 [](const std::vector<Variable>& v) {
                   Generator mask_gen(7);  // the same mask on every evaluation
                   return dropout(v[0], 0.4, true, mask_gen);
                 },
                 {x}),
             "dropout");
}

TEST_CASE("conv ops record nothing without gradients, and dropout is the identity at inference") {
  Generator gen(55);
  const Variable x(uniform({1, 4, 4, 2}, -1, 1, gen), false);
  const Variable k(uniform({3, 3, 2, 2}, -1, 1, gen), true);
  {
    NoGradGuard no_grad;
    CHECK(conv2d(x, k, Variable(), Conv2dOptions{}).grad_fn() == nullptr);
  }
  CHECK(conv2d(x, k, Variable(), Conv2dOptions{}).grad_fn() != nullptr);
  CHECK(dropout(x, 0.5, false).same(x));
  CHECK_THROWS_AS(conv2d(Variable(zeros({4, 4, 2}), false), k, Variable(), Conv2dOptions{}), ShapeError);
}

TEST_CASE("gradcheck conv_batch_norm (conv2d and depthwise, training and inference, +ReLU6)") {
  Generator gen(56);
  for (ConvKind kind : {ConvKind::Conv2d, ConvKind::Depthwise}) {
    for (bool training : {true, false}) {
      for (bool relu6 : {false, true}) {
        const bool depthwise = kind == ConvKind::Depthwise;
        const std::int64_t cin = 3, cout = depthwise ? 3 : 4;
        Tensor moving_mean = uniform({cout}, -0.5, 0.5, gen, DType::Float64);
        Tensor moving_var = uniform({cout}, 0.5, 2.0, gen, DType::Float64);
        const Conv2dOptions co = stride2_same();
        BatchNormOptions bo;
        bo.training = training;
        const std::vector<Variable> inputs = {leaf({2, 4, 5, cin}, gen),
                                              leaf(depthwise ? Shape{3, 3, cin, 1} : Shape{3, 3, cin, cout}, gen),
                                              leaf({cout}, gen, 0.5, 3.0), leaf({cout}, gen, 0.0, 5.0)};
        const std::string label = std::string(depthwise ? "depthwise" : "conv2d") + (training ? " training" : " inference") +
                                  (relu6 ? " + relu6" : "");
        require_ok(gradcheck(
                       [&](const std::vector<Variable>& v) {
                         return conv_batch_norm(kind, v[0], v[1], v[2], v[3], moving_mean, moving_var, co, bo, relu6);
                       },
                       inputs),
                   "conv_batch_norm " + label);
        // Same values as the two ops in sequence (float32, fast path), and the same moving statistics.
        const Tensor x = uniform({2, 6, 7, 8}, -1, 1, gen);
        const Tensor k = uniform(depthwise ? Shape{3, 3, 8, 1} : Shape{3, 3, 8, 8}, -1, 1, gen);
        const Tensor g = uniform({8}, 0.5, 2, gen), b = uniform({8}, 0, 2, gen);
        Tensor mm1 = zeros({8}), mv1 = ones({8}), mm2 = zeros({8}), mv2 = ones({8});
        const Variable fused = conv_batch_norm(kind, Variable(x), Variable(k), Variable(g), Variable(b), mm1, mv1, co, bo, relu6);
        const Variable conv = depthwise ? depthwise_conv2d(Variable(x), Variable(k), Variable(), co)
                                        : conv2d(Variable(x), Variable(k), Variable(), co);
        const Variable seq = relu6 ? batch_norm_relu6(conv, Variable(g), Variable(b), mm2, mv2, bo)
                                   : batch_norm(conv, Variable(g), Variable(b), mm2, mv2, bo);
        INFO(label);
        CHECK(max_abs_difference(fused.data(), seq.data()) < 1e-4);
        CHECK(mm1.to_vector<float>()[3] == doctest::Approx(mm2.to_vector<float>()[3]).epsilon(1e-5));
        CHECK(mv1.to_vector<float>()[5] == doctest::Approx(mv2.to_vector<float>()[5]).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("conv_batch_norm under a frozen batch norm (inference mode, fixed gamma and beta) fuses into one pass") {
  // The fine-tuning case: the convolution trains, the BN layer does not. The
  // op then runs the folded inference kernels and differentiates from its
  // output; gradients must match finite differences and the two-op sequence.
  Generator gen(57);
  for (ConvKind kind : {ConvKind::Conv2d, ConvKind::Depthwise}) {
    for (bool relu6 : {false, true}) {
      const bool depthwise = kind == ConvKind::Depthwise;
      const std::string label = std::string(depthwise ? "depthwise" : "conv2d") + (relu6 ? " + relu6" : "");
      INFO(label);
      const std::int64_t cin = 3, cout = depthwise ? 3 : 4;
      Tensor moving_mean = uniform({cout}, -0.5, 0.5, gen, DType::Float64);
      Tensor moving_var = uniform({cout}, 0.5, 2.0, gen, DType::Float64);
      const std::vector<double> mean_before = moving_mean.to_vector<double>();
      const Variable gamma(uniform({cout}, 0.5, 3.0, gen, DType::Float64), false);
      const Variable beta(uniform({cout}, 0.0, 5.0, gen, DType::Float64), false);
      const Conv2dOptions co = stride2_same();
      BatchNormOptions bo;
      bo.training = false;
      const std::vector<Variable> inputs = {leaf({2, 4, 5, cin}, gen),
                                            leaf(depthwise ? Shape{3, 3, cin, 1} : Shape{3, 3, cin, cout}, gen)};
      require_ok(gradcheck(
                     [&](const std::vector<Variable>& v) {
                       return conv_batch_norm(kind, v[0], v[1], gamma, beta, moving_mean, moving_var, co, bo, relu6);
                     },
                     inputs),
                 "frozen conv_batch_norm " + label);
      CHECK(moving_mean.to_vector<double>() == mean_before);  // inference mode: statistics untouched

      // Float32 against conv + batch_norm(_relu6) as two ops.
      const Tensor x = uniform({2, 9, 7, 8}, -1, 1, gen);
      const Tensor k = uniform(depthwise ? Shape{3, 3, 8, 1} : Shape{3, 3, 8, 8}, -1, 1, gen);
      const Variable g(uniform({8}, 0.5, 2, gen), false), b(uniform({8}, 0, 2, gen), false);
      Tensor mm = uniform({8}, -0.2, 0.2, gen), mv = uniform({8}, 0.5, 1.5, gen);
      const Tensor seed = uniform({2, 5, 4, 8}, -1, 1, gen);
      const Variable x1(x, true), k1(k, true), x2(x, true), k2(k, true);
      const Variable fused = conv_batch_norm(kind, x1, k1, g, b, mm, mv, co, bo, relu6);
      const Variable conv = depthwise ? depthwise_conv2d(x2, k2, Variable(), co) : conv2d(x2, k2, Variable(), co);
      const Variable seq = relu6 ? batch_norm_relu6(conv, g, b, mm, mv, bo) : batch_norm(conv, g, b, mm, mv, bo);
      REQUIRE(fused.shape() == seed.shape());
      fused.backward(seed);
      seq.backward(seed);
      CHECK(max_abs_difference(fused.data(), seq.data()) < 1e-4);
      CHECK(max_abs_difference(x1.grad(), x2.grad()) < 1e-4);
      CHECK(max_abs_difference(k1.grad(), k2.grad()) < 1e-3);
    }
  }
}

TEST_CASE("gradcheck the general fused forms: ReLU, and the producing layer's bias folded in") {
  // batch_norm_activation and conv_batch_norm with a bias and ReLU (uncapped)
  // or ReLU6, in training, inference with trainable gamma and beta, and
  // inference under a frozen batch norm; each equals adding the bias, then
  // the unfused ops (values, every gradient, the moving statistics).
  Generator gen(58);
  for (ConvKind kind : {ConvKind::Conv2d, ConvKind::Depthwise}) {
    for (int mode = 0; mode < 3; ++mode) {  // training, inference, frozen inference
      for (BatchNormActivation act : {BatchNormActivation::None, BatchNormActivation::Relu, BatchNormActivation::Relu6}) {
        const bool depthwise = kind == ConvKind::Depthwise, frozen = mode == 2;
        const std::string label = std::string(depthwise ? "depthwise" : "conv2d") +
                                  (mode == 0 ? " training" : frozen ? " frozen" : " inference") + " + " +
                                  activation_name(act);
        INFO(label);
        const std::int64_t cin = 3, cout = depthwise ? 3 : 4;
        Tensor moving_mean = uniform({cout}, -0.5, 0.5, gen, DType::Float64);
        Tensor moving_var = uniform({cout}, 0.5, 2.0, gen, DType::Float64);
        const Conv2dOptions co = stride2_same();
        BatchNormOptions bo;
        bo.training = mode == 0;
        const Variable gamma(uniform({cout}, 0.5, 3.0, gen, DType::Float64), !frozen);
        const Variable beta(uniform({cout}, -1.0, 3.0, gen, DType::Float64), !frozen);
        std::vector<Variable> inputs = {leaf({2, 4, 5, cin}, gen),
                                        leaf(depthwise ? Shape{3, 3, cin, 1} : Shape{3, 3, cin, cout}, gen),
                                        leaf({cout}, gen)};
        require_ok(gradcheck(
                       [&](const std::vector<Variable>& v) {
                         return conv_batch_norm(kind, v[0], v[1], v[2], gamma, beta, moving_mean, moving_var, co, bo,
                                                act);
                       },
                       inputs),
                   "conv_batch_norm with bias " + label);
        if (!frozen) {
          require_ok(gradcheck(
                         [&](const std::vector<Variable>& v) {
                           return batch_norm_activation(v[0], v[1], v[2], moving_mean, moving_var, bo, act, v[3]);
                         },
                         {leaf({2, 3, 3, cout}, gen), leaf({cout}, gen, 0.5, 3.0), leaf({cout}, gen, -1.0, 3.0),
                          leaf({cout}, gen)}),
                     "batch_norm_activation with bias " + label);
        }

        // Against conv + bias, then batch_norm and the activation as separate ops.
        const Tensor x = uniform({2, 6, 7, 8}, -1, 1, gen);
        const Tensor k = uniform(depthwise ? Shape{3, 3, 8, 1} : Shape{3, 3, 8, 8}, -1, 1, gen);
        const Tensor bias = uniform({8}, -1, 1, gen);
        const Variable g(uniform({8}, 0.5, 2, gen), !frozen), b(uniform({8}, -1, 2, gen), !frozen);
        Tensor mm1 = uniform({8}, -0.2, 0.2, gen), mv1 = uniform({8}, 0.5, 1.5, gen);
        Tensor mm2 = mm1.clone(), mv2 = mv1.clone();
        const Variable x1(x, true), k1(k, true), b1(bias, true), x2(x, true), k2(k, true), b2(bias, true);
        const Variable fused = conv_batch_norm(kind, x1, k1, b1, g, b, mm1, mv1, co, bo, act);
        const Variable conv = depthwise ? depthwise_conv2d(x2, k2, b2, co) : conv2d(x2, k2, b2, co);
        Variable seq = batch_norm(conv, g, b, mm2, mv2, bo);
        if (act == BatchNormActivation::Relu) seq = relu(seq);
        if (act == BatchNormActivation::Relu6) seq = relu6(seq);
        const Tensor seed = uniform(fused.shape(), -1, 1, gen);
        fused.backward(seed);
        seq.backward(seed);
        CHECK(max_abs_difference(fused.data(), seq.data()) < 1e-4);
        CHECK(max_abs_difference(x1.grad(), x2.grad()) < 1e-4);
        CHECK(max_abs_difference(k1.grad(), k2.grad()) < 1e-3);
        CHECK(max_abs_difference(b1.grad(), b2.grad()) < 1e-3);  // zero in training, up to rounding
        CHECK(max_abs_difference(mm1, mm2) < 1e-5);
        CHECK(max_abs_difference(mv1, mv2) < 1e-5);
      }
    }
  }
}

TEST_CASE("inverted_residual: the stages' gradients when they are needed, one op without them") {
  Generator gen(58);
  const std::int64_t cin = 3, expanded = 6;
  Tensor mm[3] = {uniform({expanded}, -0.5, 0.5, gen, DType::Float64), uniform({expanded}, -0.5, 0.5, gen, DType::Float64),
                  uniform({cin}, -0.5, 0.5, gen, DType::Float64)};
  Tensor mv[3] = {uniform({expanded}, 0.5, 2.0, gen, DType::Float64), uniform({expanded}, 0.5, 2.0, gen, DType::Float64),
                  uniform({cin}, 0.5, 2.0, gen, DType::Float64)};
  Conv2dOptions same;
  same.padding = Padding::Same;
  auto stages_of = [&](const std::vector<Variable>& v, bool training) {
    std::vector<ConvBatchNormStage> stages(3);
    const ConvKind kinds[3] = {ConvKind::Conv2d, ConvKind::Depthwise, ConvKind::Conv2d};
    for (int i = 0; i < 3; ++i) {
      ConvBatchNormStage& s = stages[static_cast<std::size_t>(i)];
      s.kind = kinds[i];
      s.kernel = v[static_cast<std::size_t>(1 + i)];
      s.gamma = v[static_cast<std::size_t>(4 + 2 * i)];
      s.beta = v[static_cast<std::size_t>(5 + 2 * i)];
      s.moving_mean = &mm[i];
      s.moving_variance = &mv[i];
      s.conv = same;
      s.bn.training = training;
      s.activation = i < 2 ? BatchNormActivation::Relu6 : BatchNormActivation::None;
    }
    return stages;
  };
  std::vector<Variable> inputs = {leaf({2, 5, 4, cin}, gen),       leaf({1, 1, cin, expanded}, gen),
                                  leaf({3, 3, expanded, 1}, gen),   leaf({1, 1, expanded, cin}, gen)};
  for (std::int64_t c : {expanded, expanded, cin}) {
    inputs.push_back(leaf({c}, gen, 0.5, 2.0));  // gamma
    inputs.push_back(leaf({c}, gen, 0.0, 1.0));  // beta
  }
  for (bool training : {false, true}) {
    INFO((training ? "training" : "inference"));
    require_ok(gradcheck([&](const std::vector<Variable>& v) { return inverted_residual(v[0], stages_of(v, training), true); },
                         inputs),
               "inverted_residual");
  }
  // Without gradients (float32): one op, no tape node, the stages' values.
  std::vector<Variable> values;
  for (const Variable& v : inputs) values.emplace_back(v.data().to(DType::Float32), false);
  for (Tensor* t : {&mm[0], &mm[1], &mm[2], &mv[0], &mv[1], &mv[2]}) *t = t->to(DType::Float32);
  const Variable fused = inverted_residual(values[0], stages_of(values, false), true);
  CHECK(fused.grad_fn() == nullptr);
  Variable h = values[0];
  for (const ConvBatchNormStage& s : stages_of(values, false))
    h = conv_batch_norm(s.kind, h, s.kernel, s.bias, s.gamma, s.beta, *s.moving_mean, *s.moving_variance, s.conv, s.bn,
                        s.activation);
  CHECK(max_abs_difference(fused.data(), add(h, values[0]).data()) < 1e-5);
  // A stage that needs a gradient puts the stages on the tape.
  const Variable x(values[0].data(), true);
  CHECK(inverted_residual(x, stages_of(values, false), true).grad_fn() != nullptr);
  CHECK_THROWS_AS(inverted_residual(x, {}, true), ValueError);
}
