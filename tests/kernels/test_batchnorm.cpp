// Batch normalisation (training forward with batch statistics, backward,
// fused ReLU6, inference affine) against the plain reference loops under
// every ISA and 1/2 threads; the moving-average update equations by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/ops_constant.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/test_conv_support.hpp"

using namespace petal;
using namespace petal::conv_test;

namespace {

void check_batch_norm_case(const Shape& shape, bool relu6, double offset, Generator& gen) {
  INFO("shape " << shape_str(shape) << (relu6 ? " + relu6" : "") << ", data offset " << offset);
  const std::int64_t c = shape.back(), rows = shape_numel(shape) / c;
  // An offset far from zero checks that the variance does not cancel.
  const Tensor x = random_tensor(shape, gen, offset - 2.0, offset + 2.0);
  const Tensor gamma = random_tensor({c}, gen, 0.5, 3.0), beta = random_tensor({c}, gen, -1.0, 4.0);
  const Tensor dy = random_tensor(shape, gen);
  const double eps = 1e-3;
  std::vector<float> y_ref(static_cast<std::size_t>(x.numel())), mean_ref(static_cast<std::size_t>(c)), var_ref(static_cast<std::size_t>(c)),
      dx_ref(static_cast<std::size_t>(x.numel())), dg_ref(static_cast<std::size_t>(c)), db_ref(static_cast<std::size_t>(c));
  petal::cpu::reference_batch_norm_training(x.data<float>(), gamma.data<float>(), beta.data<float>(), rows, c, eps,
                                            relu6, y_ref.data(), mean_ref.data(), var_ref.data());
  petal::cpu::reference_batch_norm_backward(dy.data<float>(), x.data<float>(), gamma.data<float>(), beta.data<float>(),
                                            mean_ref.data(), var_ref.data(), rows, c, eps, relu6, dx_ref.data(),
                                            dg_ref.data(), db_ref.data());
  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    Tensor mean, var;
    const Tensor y = ops::batch_norm_training(x, gamma, beta, eps, relu6, mean, var);
    check_close(y, y_ref, 2e-5, "forward");
    check_close(mean, mean_ref, 1e-6, "batch mean");
    check_close(var, var_ref, 1e-5, "batch variance");
    const ops::BatchNormGrads g = ops::batch_norm_backward(dy, x, gamma, beta, mean, var, eps, relu6);
    check_close(g.x, dx_ref, 1e-4, "input gradient");
    check_close(g.gamma, dg_ref, 1e-4, "gamma gradient");
    check_close(g.beta, db_ref, 1e-4, "beta gradient");
  });
}

}  // namespace

TEST_CASE("batch norm training forward and backward match the reference loops") {
  Generator gen(31);
  for (bool relu6 : {false, true}) {
    check_batch_norm_case({2, 5, 7, 16}, relu6, 0.0, gen);
    check_batch_norm_case({1, 9, 9, 24}, relu6, 1.0, gen);   // C = 24: period of two rows on AVX-512
    check_batch_norm_case({3, 4, 5, 37}, relu6, 2.0, gen);   // ragged channels
    check_batch_norm_case({7, 3}, relu6, 0.0, gen);          // 2-D input, tiny
    check_batch_norm_case({2, 24, 24, 32}, relu6, 50.0, gen);  // shifted data: no cancellation
  }
}

TEST_CASE("batch norm on tensors larger than the caches streams its outputs correctly") {
  // Above cpu::kStreamOutputThresholdBytes the forward affine pass and the
  // backward input gradient write with non-temporal stores; 36 channels
  // leave most vectors unaligned (AVX-512 period 144), so both store paths
  // meet.
  Generator gen(33);
  const Shape shape{4, 256, 256, 36};
  REQUIRE(shape_numel(shape) * 4 >= cpu::kStreamOutputThresholdBytes);
  check_batch_norm_case(shape, true, 1.0, gen);
}

TEST_CASE("batch norm at MobileNetV2 shapes (batch 2, 192x192 input)") {
  Generator gen(32);
  check_batch_norm_case({2, 96, 96, 32}, true, 0.5, gen);   // bn_Conv1
  check_batch_norm_case({2, 48, 48, 144}, true, 0.5, gen);  // block_2_expand_BN
  check_batch_norm_case({2, 6, 6, 1280}, true, 0.5, gen);   // Conv_1_bn
}

TEST_CASE("moving statistics follow the momentum update with the unbiased variance (by hand)") {
  // One channel, values 1, 2, 3, 6: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5,
  // unbiased 14 / 3.
  const Tensor x = from_vector<float>({1, 2, 3, 6}, {1, 2, 2, 1});
  Tensor mean, var;
  const Tensor y = ops::batch_norm_training(x, ones({1}), zeros({1}), 1e-3, false, mean, var);
  CHECK(mean.item<float>() == doctest::Approx(3.0));
  CHECK(var.item<float>() == doctest::Approx(3.5));
  CHECK(y.to_vector<float>()[0] == doctest::Approx(-2.0 / std::sqrt(3.5 + 1e-3)));
  Tensor moving_mean = from_vector<float>({1.0f}), moving_var = from_vector<float>({2.0f});
  ops::update_moving_statistics(moving_mean, moving_var, mean, var, 4, 0.9);
  // 1 * 0.9 + 3 * 0.1 = 1.2; 2 * 0.9 + (14 / 3) * 0.1 = 2.2666...
  CHECK(moving_mean.item<float>() == doctest::Approx(1.2));
  CHECK(moving_var.item<float>() == doctest::Approx(1.8 + 14.0 / 30.0));
}

TEST_CASE("inference batch norm: folding and the fused affine + ReLU6") {
  Generator gen(33);
  const Tensor gamma = from_vector<float>({2.0f, 0.5f}), beta = from_vector<float>({1.0f, -1.0f});
  const Tensor mean = from_vector<float>({0.5f, -2.0f}), var = from_vector<float>({3.999f, 0.249f});
  const ops::FoldedBatchNorm bn = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
  // scale = gamma / sqrt(var + eps) = {1, 1}; shift = beta - mean * scale = {0.5, 1}
  CHECK(bn.scale.to_vector<float>()[0] == doctest::Approx(1.0));
  CHECK(bn.scale.to_vector<float>()[1] == doctest::Approx(1.0));
  CHECK(bn.shift.to_vector<float>()[0] == doctest::Approx(0.5));
  CHECK(bn.shift.to_vector<float>()[1] == doctest::Approx(1.0));
  // The per-ISA fold (vectors of doubles plus a scalar tail) against the
  // formula in double, rounded once: within an ulp of float (the vector
  // build may fuse mean * scale into the subtraction).
  for (std::int64_t c : {1, 3, 8, 37, 960}) {
    const Tensor g = random_tensor({c}, gen, 0.1, 3.0), b = random_tensor({c}, gen, -2.0, 2.0),
                 m = random_tensor({c}, gen, -3.0, 3.0), v = random_tensor({c}, gen, 0.0, 5.0);
    const std::vector<float> gv = g.to_vector<float>(), bv = b.to_vector<float>(), mv = m.to_vector<float>(),
                             vv = v.to_vector<float>();
    std::vector<float> want_scale(static_cast<std::size_t>(c)), want_shift(want_scale.size());
    for (std::size_t i = 0; i < want_scale.size(); ++i) {
      const double sc = double(gv[i]) / std::sqrt(double(vv[i]) + 1e-3);
      want_scale[i] = float(sc);
      want_shift[i] = float(double(bv[i]) - double(mv[i]) * sc);
    }
    for_each_isa_and_threads([&](const std::string& config) {
      INFO(config, " channels=", c);
      const ops::FoldedBatchNorm f = ops::fold_batch_norm(g, b, m, v, 1e-3);
      const std::vector<float> got_scale = f.scale.to_vector<float>(), got_shift = f.shift.to_vector<float>();
      auto within_ulp = [](float got, float want) {
        return got == want || got == std::nextafter(want, INFINITY) || got == std::nextafter(want, -INFINITY);
      };
      for (std::size_t i = 0; i < want_scale.size(); ++i) {
        INFO("channel ", i, ": scale ", got_scale[i], " against ", want_scale[i], ", shift ", got_shift[i],
             " against ", want_shift[i]);
        CHECK(got_scale[i] == want_scale[i]);  // one division and one square root: correctly rounded
        CHECK(within_ulp(got_shift[i], want_shift[i]));
      }
    });
  }
  const Tensor x = random_tensor({3, 5, 4, 37}, gen, -8.0, 8.0);
  const Tensor scale = random_tensor({37}, gen), shift = random_tensor({37}, gen);
  std::vector<float> expected = x.to_vector<float>();
  for (std::size_t i = 0; i < expected.size(); ++i)
    expected[i] = expected[i] * scale.to_vector<float>()[i % 37] + shift.to_vector<float>()[i % 37];
  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    check_close(ops::channel_affine(x, scale, shift, false), expected, 1e-6, "affine");
    check_close(ops::channel_affine(x, scale, shift, true), relu6_of(expected), 1e-6, "affine + relu6");
  });
}

TEST_CASE("batch norm rejects bad arguments") {
  Tensor mean, var;
  CHECK_THROWS_AS(ops::batch_norm_training(zeros({2, 3, 3, 4}), ones({3}), zeros({4}), 1e-3, false, mean, var),
                  ShapeError);
  CHECK_THROWS_AS(ops::batch_norm_training(zeros({2, 0, 3, 4}), ones({4}), zeros({4}), 1e-3, false, mean, var),
                  ShapeError);
  CHECK_THROWS_AS(ops::batch_norm_training(zeros({2, 3, 3, 4}), ones({4}), zeros({4}), 0.0, false, mean, var),
                  ValueError);
  CHECK_THROWS_AS(ops::batch_norm_backward(zeros({2, 3, 3, 4}), zeros({2, 3, 3, 5}), ones({5}), zeros({5}), zeros({5}),
                                           ones({5}), 1e-3, false),
                  ShapeError);
}

TEST_CASE("conv + batch norm training with statistics gathered in the convolution equals the two ops") {
  Generator gen(34);
  struct Case {
    Shape x;
    std::int64_t k, out_c, stride;
    bool depthwise;
    const char* label;
  };
  const std::vector<Case> cases = {
      {{2, 9, 7, 16}, 1, 24, 1, false, "pointwise"},
      {{2, 9, 8, 3}, 3, 32, 2, false, "direct Cin 3"},
      {{1, 10, 9, 6}, 3, 10, 1, false, "im2col"},
      {{2, 9, 9, 32}, 3, 32, 2, true, "depthwise 3x3/2"},
      {{1, 8, 7, 24}, 3, 24, 1, true, "depthwise 3x3/1, 24 channels"},
  };
  for (const Case& c : cases) {
    for (bool relu6 : {false, true}) {
      INFO(c.label << (relu6 ? " + relu6" : ""));
      // Inputs around 3 give outputs whose mean is far from zero: the shifted sums must not cancel.
      const Tensor x = random_tensor(c.x, gen, 2.0, 4.0);
      const Tensor kernel =
          random_tensor(c.depthwise ? Shape{c.k, c.k, c.x[3], 1} : Shape{c.k, c.k, c.x[3], c.out_c}, gen, 0.0, 1.0);
      const Tensor gamma = random_tensor({c.out_c}, gen, 0.5, 2.0), beta = random_tensor({c.out_c}, gen, 0.0, 3.0);
      const ops::Conv2dWindow win =
          ops::conv2d_window(c.x[1], c.x[2], c.k, c.k, c.stride, c.stride, ops::ConvPadding::Same, "test");
      const Tensor conv = c.depthwise ? ops::depthwise_conv2d(x, kernel, Tensor(), win) : ops::conv2d(x, kernel, Tensor(), win);
      std::vector<float> y_ref(static_cast<std::size_t>(conv.numel())), mean_ref(static_cast<std::size_t>(c.out_c)),
          var_ref(static_cast<std::size_t>(c.out_c));
      petal::cpu::reference_batch_norm_training(conv.data<float>(), gamma.data<float>(), beta.data<float>(),
                                                conv.numel() / c.out_c, c.out_c, 1e-3, relu6, y_ref.data(),
                                                mean_ref.data(), var_ref.data());
      for_each_isa_and_threads([&](const std::string& config) {
        INFO(config);
        const ops::ConvBatchNormResult r =
            c.depthwise ? ops::depthwise_conv2d_batch_norm_training(x, kernel, win, gamma, beta, 1e-3, relu6)
                        : ops::conv2d_batch_norm_training(x, kernel, win, gamma, beta, 1e-3, relu6);
        check_close(r.conv_out, conv.to_vector<float>(), 1e-5, "convolution output");
        check_close(r.mean, mean_ref, 1e-5, "batch mean");
        check_close(r.biased_variance, var_ref, 1e-4, "batch variance");
        check_close(r.y, y_ref, 1e-4, "normalised output");
      });
      const ops::ConvBatchNormResult r64 =
          c.depthwise ? ops::depthwise_conv2d_batch_norm_training(x.to(DType::Float64), kernel.to(DType::Float64), win,
                                                                  gamma.to(DType::Float64), beta.to(DType::Float64),
                                                                  1e-3, relu6)
                      : ops::conv2d_batch_norm_training(x.to(DType::Float64), kernel.to(DType::Float64), win,
                                                        gamma.to(DType::Float64), beta.to(DType::Float64), 1e-3, relu6);
      check_close(r64.y, y_ref, 1e-4, "float64 path");
    }
  }
  CHECK_THROWS_AS(ops::conv2d_batch_norm_training(zeros({1, 4, 4, 3}), zeros({1, 1, 3, 5}), ops::Conv2dWindow{},
                                                  ones({4}), zeros({4}), 1e-3, false),
                  ShapeError);
}

TEST_CASE("channel_affine_backward equals ReLU6's backward times the channel scale, in one pass") {
  Generator gen(34);
  for (const Shape& shape : {Shape{2, 5, 7, 16}, Shape{3, 4, 5, 37}, Shape{1, 9, 9, 24}, Shape{7, 3}}) {
    const std::int64_t c = shape.back();
    // Outputs of a ReLU6 (exactly 0 and 6 included) and of a plain affine map.
    Tensor y = random_tensor(shape, gen, -1.0, 7.0);
    y = ops::channel_affine(y, ones({c}), zeros({c}), true);
    const Tensor grad = random_tensor(shape, gen), scale = random_tensor({c}, gen, 0.5, 2.0);
    for (bool relu6 : {false, true}) {
      INFO("shape " << shape_str(shape) << (relu6 ? " + relu6" : ""));
      const std::vector<float> gv = grad.to_vector<float>(), yv = y.to_vector<float>(), sv = scale.to_vector<float>();
      std::vector<float> expected(gv.size());
      for (std::size_t i = 0; i < gv.size(); ++i) {
        const bool pass = !relu6 || (yv[i] > 0.0f && yv[i] < 6.0f);
        expected[i] = pass ? gv[i] * sv[i % static_cast<std::size_t>(c)] : 0.0f;
      }
      for_each_isa_and_threads([&](const std::string& config) {
        INFO(config);
        check_close(ops::channel_affine_backward(grad, y, scale, relu6), expected, 1e-6, "gradient");
      });
    }
  }
  CHECK_THROWS_AS(ops::channel_affine_backward(zeros({2, 3, 4}), zeros({2, 3, 5}), ones({5}), true), ShapeError);
  CHECK_THROWS_AS(ops::channel_affine_backward(zeros({2, 3, 4}), zeros({2, 3, 4}), ones({5}), true), ShapeError);
}

TEST_CASE("kept folds of batch norms and kernels follow every change of their inputs") {
  // fold_batch_norm and the depthwise kernel fold keep their results while
  // the inputs hold the same bytes (kernels/derived_cache.hpp). Writes of
  // every kind, a pointer kept from before the folds included, must show.
  Generator gen(91);
  const std::int64_t c = 37;
  Tensor gamma = random_tensor({c}, gen, 0.5, 3.0), beta = random_tensor({c}, gen, -1.0, 4.0);
  Tensor mean = random_tensor({c}, gen, -1.0, 1.0), var = random_tensor({c}, gen, 0.5, 2.0);
  Tensor kernel = random_tensor({3, 3, c, 1}, gen);
  float* var_pointer = var.data<float>();  // kept across the folds below
  auto expected_scale = [&](std::size_t i) {
    return gamma.to_vector<double>()[i] / std::sqrt(var.to_vector<double>()[i] + 1e-3);
  };
  ops::FoldedBatchNorm first = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
  for (int call = 0; call < 3; ++call) {
    ops::FoldedBatchNorm again = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
    CHECK(again.scale.to_vector<float>() == first.scale.to_vector<float>());
    CHECK(again.shift.to_vector<float>() == first.shift.to_vector<float>());
    CHECK(again.scale.data<float>() != first.scale.data<float>());  // each call its own copy
    again.scale.fill_(-1.0);  // and writing to it reaches nothing kept
  }
  CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).scale.to_vector<float>() ==
        first.scale.to_vector<float>());
  CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-5).scale.to_vector<float>()[0] ==
        doctest::Approx(gamma.to_vector<double>()[0] / std::sqrt(var.to_vector<double>()[0] + 1e-5)).epsilon(1e-6));
  var_pointer[5] = 4.0f;  // through the pointer taken before
  ops::FoldedBatchNorm after = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
  CHECK(after.scale.to_vector<float>()[5] == doctest::Approx(expected_scale(5)).epsilon(1e-6));
  CHECK(after.scale.to_vector<float>()[5] != first.scale.to_vector<float>()[5]);
  beta.slice(0, 3, 4).fill_(10.0);
  CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).shift.to_vector<float>()[3] !=
        after.shift.to_vector<float>()[3]);
  // A new tensor at the address of one that died, holding other values.
  {
    const float* old_address = gamma.data<float>();
    gamma = Tensor();
    Tensor other = random_tensor({c}, gen, 5.0, 6.0);
    INFO("same address: " << (other.data<float>() == old_address));
    CHECK(ops::fold_batch_norm(other, beta, mean, var, 1e-3).scale.to_vector<float>()[0] ==
          doctest::Approx(other.to_vector<double>()[0] / std::sqrt(var.to_vector<double>()[0] + 1e-3)).epsilon(1e-6));
    gamma = other;
  }
  // The kernel with the scale folded in (depthwise inference).
  const Tensor x = random_tensor({1, 5, 6, c}, gen);
  const ops::Conv2dWindow window = ops::conv2d_window(5, 6, 3, 3, 1, 1, ops::ConvPadding::Same, "test");
  ops::FoldedBatchNorm bn = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
  std::vector<float> y0;
  for (int call = 0; call < 3; ++call)
    y0 = ops::depthwise_bn_relu6_inference(x, kernel, Tensor(), bn, window, false).to_vector<float>();
  float* kernel_pointer = kernel.data<float>();
  kernel_pointer[0] += 1.0f;  // tap (0, 0) of channel 0
  const std::vector<float> y1 =
      ops::depthwise_bn_relu6_inference(x, kernel, Tensor(), bn, window, false).to_vector<float>();
  CHECK(y1 != y0);
  CHECK(y1 == ops::depthwise_bn_relu6_inference(x, kernel.clone(), Tensor(), bn, window, false).to_vector<float>());
  bn.scale.data<float>()[1] *= 2.0f;  // the caller's own folded scale changed
  const std::vector<float> y2 =
      ops::depthwise_bn_relu6_inference(x, kernel, Tensor(), bn, window, false).to_vector<float>();
  CHECK(y2 != y1);
  const ops::FoldedBatchNorm bn_copy{bn.scale.clone(), bn.shift.clone()};
  CHECK(y2 == ops::depthwise_bn_relu6_inference(x, kernel.clone(), Tensor(), bn_copy, window, false)
                  .to_vector<float>());
}

TEST_CASE("kept folds of inputs declared constant are trusted, for the same tensors, until a declaration ends") {
  // Declared constant (what nn::ConstantWeights does), the inputs are
  // compared once and then not read: a write while declared is not seen
  // (the broken promise nn::ConstantWeights reports), which shows the
  // comparison is skipped. Other tensors at other addresses, or any
  // declaration ending, bring the comparison back.
  Generator gen(97);
  const std::int64_t c = 21;
  Tensor gamma = random_tensor({c}, gen, 0.5, 3.0), beta = random_tensor({c}, gen, -1.0, 4.0);
  Tensor mean = random_tensor({c}, gen, -1.0, 1.0), var = random_tensor({c}, gen, 0.5, 2.0);
  const std::vector<float> first = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).scale.to_vector<float>();
  {
    ops::ConstantDeclaration g(gamma), b(beta), m(mean), v(var);
    CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).scale.to_vector<float>() == first);  // compared
    var.data<float>()[2] = 9.0f;  // behind the promise
    CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).scale.to_vector<float>() == first);  // trusted
    // Another variance tensor (not declared, another address) with the same gamma.
    Tensor other_var = var.clone();
    CHECK(ops::fold_batch_norm(gamma, beta, mean, other_var, 1e-3).scale.to_vector<float>()[2] ==
          doctest::Approx(gamma.to_vector<double>()[2] / std::sqrt(9.0 + 1e-3)).epsilon(1e-6));
    {
      Tensor unrelated = random_tensor({3}, gen);
      ops::ConstantDeclaration ended(unrelated);
    }  // a declaration ended: the kept folds are compared again
    CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).scale.to_vector<float>()[2] ==
          doctest::Approx(gamma.to_vector<double>()[2] / std::sqrt(9.0 + 1e-3)).epsilon(1e-6));
  }
  var.data<float>()[2] = 1.0f;
  CHECK(ops::fold_batch_norm(gamma, beta, mean, var, 1e-3).scale.to_vector<float>()[2] ==
        doctest::Approx(gamma.to_vector<double>()[2] / std::sqrt(1.0 + 1e-3)).epsilon(1e-6));
}
