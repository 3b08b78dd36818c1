// The inverted-residual block's one-pass inference kernel
// (ops::inverted_residual_inference, kernels/cpu/conv/inverted_residual.hpp)
// against its three stages run one after the other in float64 (the
// reference loops), under every ISA with 1 and 2 threads: images run whole
// and several per pass, in bands of rows (odd sizes, stride 2, band edges),
// cut between threads at batch 1 by rows or (small images) by channels,
// with and without expansion, biases,
// ReLU6 and the residual. And: the same bits on every call, and operands
// the kernel does not cover take the stage-by-stage path.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/test_conv_support.hpp"

using namespace petal;
using namespace petal::conv_test;

namespace {

struct BlockCase {
  std::int64_t batch, h, w, in_c, expanded_c, stride, out_c;  // expanded_c 0: no expansion
  bool residual = false, biases = false, relu6 = true;
  const char* name = "";
};

struct BlockData {
  Tensor x;
  bool has_expand = false;
  ops::FoldedConvStage expand, depthwise, project;
};

ops::FoldedConvStage make_stage(const Shape& kernel_shape, std::int64_t channels, bool bias, bool relu6,
                                const ops::Conv2dWindow& window, Generator& gen) {
  ops::FoldedConvStage s;
  s.kernel = random_tensor(kernel_shape, gen, -0.5, 0.5);
  if (bias) s.bias = random_tensor({channels}, gen, -0.2, 0.2);
  s.bn.scale = random_tensor({channels}, gen, 0.5, 1.5);
  s.bn.shift = random_tensor({channels}, gen, -0.3, 0.6);
  s.window = window;
  s.relu6 = relu6;
  return s;
}

BlockData make_block(const BlockCase& c, Generator& gen) {
  BlockData d;
  d.x = random_tensor({c.batch, c.h, c.w, c.in_c}, gen);
  const ops::Conv2dWindow pointwise;
  d.has_expand = c.expanded_c > 0;
  const std::int64_t e = d.has_expand ? c.expanded_c : c.in_c;
  if (d.has_expand) d.expand = make_stage({1, 1, c.in_c, e}, e, c.biases, c.relu6, pointwise, gen);
  const ops::Conv2dWindow dw_window =
      ops::conv2d_window(c.h, c.w, 3, 3, c.stride, c.stride, ops::ConvPadding::Same, "test");
  d.depthwise = make_stage({3, 3, e, 1}, e, c.biases, c.relu6, dw_window, gen);
  d.project = make_stage({1, 1, e, c.out_c}, c.out_c, c.biases, false, pointwise, gen);
  return d;
}

ops::FoldedConvStage as_double(const ops::FoldedConvStage& s) {
  ops::FoldedConvStage d = s;
  d.kernel = s.kernel.to(DType::Float64);
  if (s.bias.defined()) d.bias = s.bias.to(DType::Float64);
  d.bn.scale = s.bn.scale.to(DType::Float64);
  d.bn.shift = s.bn.shift.to(DType::Float64);
  return d;
}

// The three stages one after the other in float64 (the reference loops).
std::vector<float> reference(const BlockData& d, bool residual) {
  const Tensor x = d.x.to(DType::Float64);
  Tensor h = x;
  if (d.has_expand) {
    const ops::FoldedConvStage s = as_double(d.expand);
    h = ops::conv2d_bn_relu6_inference(h, s.kernel, s.bias, s.bn, s.window, s.relu6);
  }
  const ops::FoldedConvStage dw = as_double(d.depthwise), pr = as_double(d.project);
  h = ops::depthwise_bn_relu6_inference(h, dw.kernel, dw.bias, dw.bn, dw.window, dw.relu6);
  Tensor y = ops::conv2d_bn_relu6_inference(h, pr.kernel, pr.bias, pr.bn, pr.window, false);
  if (residual) y = ops::add(y, x);
  return y.to_vector<float>();
}

Tensor fused(const BlockData& d, bool residual) {
  return ops::inverted_residual_inference(d.x, d.has_expand ? &d.expand : nullptr, d.depthwise, d.project, residual);
}

}  // namespace

TEST_CASE("inverted_residual_inference equals its stages run one after the other") {
  Generator gen(31);
  const std::vector<BlockCase> cases = {
      // Images larger than a pass: bands of rows (cut between the threads at batch 1).
      {1, 41, 37, 16, 64, 2, 24, false, false, true, "bands, stride 2, odd sizes"},
      {2, 33, 35, 24, 144, 1, 24, true, false, true, "bands, residual"},
      {1, 96, 96, 16, 96, 2, 24, false, false, true, "block_1 at 192x192"},
      // Small images: whole, several per pass.
      {5, 6, 7, 40, 100, 1, 40, true, true, true, "whole images, residual, biases"},
      {3, 12, 12, 32, 192, 2, 20, false, false, true, "whole images, stride 2"},
      {1, 6, 6, 160, 960, 1, 160, true, false, true, "block_14 at 192x192, batch 1"},
      // Small images at batch 1: cut by channels between threads.
      {1, 12, 12, 64, 384, 1, 64, true, true, true, "channel parts, residual, biases"},
      {1, 11, 11, 24, 72, 2, 40, false, false, true, "channel parts, ragged expansion, stride 2"},
      {1, 9, 7, 40, 0, 1, 24, false, true, true, "channel parts, no expansion"},
      {1, 7, 6, 20, 64, 1, 20, true, false, true, "channel parts, output channels not whole vectors"},
      // No expansion (MobileNetV2's first block), ragged channel counts, no ReLU6.
      {1, 20, 20, 32, 0, 1, 16, false, false, true, "no expansion"},
      {2, 9, 9, 8, 20, 2, 7, false, true, false, "ragged channels, no ReLU6, biases"},
      {1, 1, 1, 5, 12, 1, 5, true, true, true, "one pixel"},
      {4, 2, 3, 3, 0, 2, 5, false, false, true, "tiny, stride 2, no expansion"},
  };
  for (const BlockCase& c : cases) {
    INFO(c.name);
    const BlockData d = make_block(c, gen);
    const std::vector<float> expected = reference(d, c.residual);
    CHECK(ops::inverted_residual_runs_fused(d.x, d.has_expand ? &d.expand : nullptr, d.depthwise, d.project,
                                            c.residual));
    for_each_isa_and_threads([&](const std::string& config) {
      INFO(config);
      const Tensor y = fused(d, c.residual);
      check_close(y, expected, 1e-5, "fused block");
      CHECK(fused(d, c.residual).to_vector<float>() == y.to_vector<float>());  // the same bits again
    });
  }
}

TEST_CASE("inverted_residual_inference at batch 1 gives the same bits on 1 to 4 threads") {
  // Rows at least 12 wide are cut into bands that the threads claim from
  // both ends of each segment (two threads per segment, a thread with none
  // left takes another's): who computes a band must not change it. Four
  // threads on a two-core machine take bands in varying order.
  Generator gen(37);
  const std::vector<BlockCase> cases = {
      {1, 96, 96, 16, 96, 2, 24, false, false, true, "block_1 at 192x192"},
      {1, 24, 24, 32, 192, 1, 32, true, false, true, "block_4 at 192x192"},
      {1, 12, 12, 64, 384, 1, 64, true, false, true, "block_7 at 192x192 (two bands)"},
      {1, 41, 37, 16, 64, 2, 24, false, true, true, "odd sizes, stride 2, biases"},
      {2, 33, 35, 24, 144, 1, 24, true, false, true, "batch 2 (one segment per image on 4 threads)"},
      {1, 30, 26, 24, 0, 1, 16, false, false, false, "no expansion, no ReLU6"},
  };
  for (const BlockCase& c : cases) {
    INFO(c.name);
    const BlockData d = make_block(c, gen);
    const std::vector<float> expected = reference(d, c.residual);
    check_same_bits_on_1_to_4_threads([&] { return fused(d, c.residual); },
                                      [&](const Tensor& y) { check_close(y, expected, 1e-5, "one thread"); });
  }
}

TEST_CASE("inverted_residual_inference on 3 and 4 threads, narrow rows cut in fixed parts included") {
  Generator gen(41);
  const std::vector<BlockCase> cases = {
      {1, 40, 9, 16, 48, 1, 16, true, false, true, "rows 9 wide: fixed parts"},
      {1, 29, 5, 8, 40, 2, 12, false, true, true, "rows 3 wide, stride 2: fixed parts"},
      {1, 20, 20, 16, 64, 1, 16, true, false, true, "claimed bands"},
      {3, 14, 13, 16, 32, 2, 8, false, false, true, "batch 3 on 4 threads"},
      {1, 6, 6, 160, 960, 1, 160, true, false, true, "channel parts"},
  };
  const int saved_threads = num_threads();
  for (const BlockCase& c : cases) {
    INFO(c.name);
    const BlockData d = make_block(c, gen);
    const std::vector<float> expected = reference(d, c.residual);
    for (int threads : {3, 4}) {
      INFO(threads, " threads");
      set_num_threads(threads);
      check_close(fused(d, c.residual), expected, 1e-5, "fused block");
    }
  }
  set_num_threads(saved_threads);
}

TEST_CASE("inverted_residual_inference runs the stages for what its kernel does not cover") {
  Generator gen(32);
  const BlockData d = make_block({2, 9, 9, 8, 24, 1, 8, true, true, true, "base"}, gen);
  const std::vector<float> expected = reference(d, true);
  CHECK(ops::inverted_residual_runs_fused(d.x, &d.expand, d.depthwise, d.project, true));

  SUBCASE("a ReLU6 on the projection") {
    BlockData e = d;
    e.project.relu6 = true;
    CHECK_FALSE(ops::inverted_residual_runs_fused(e.x, &e.expand, e.depthwise, e.project, true));
    Tensor h = ops::conv2d_bn_relu6_inference(e.x, e.expand.kernel, e.expand.bias, e.expand.bn, e.expand.window);
    h = ops::depthwise_bn_relu6_inference(h, e.depthwise.kernel, e.depthwise.bias, e.depthwise.bn, e.depthwise.window);
    h = ops::conv2d_bn_relu6_inference(h, e.project.kernel, e.project.bias, e.project.bn, e.project.window, true);
    check_close(ops::inverted_residual_inference(e.x, &e.expand, e.depthwise, e.project, true),
                ops::add(h, e.x).to_vector<float>(), 1e-6, "stages");
  }
  SUBCASE("float64") {
    const Tensor x64 = d.x.to(DType::Float64);
    const ops::FoldedConvStage ex = as_double(d.expand), dw = as_double(d.depthwise), pr = as_double(d.project);
    CHECK_FALSE(ops::inverted_residual_runs_fused(x64, &ex, dw, pr, true));
    check_close(ops::inverted_residual_inference(x64, &ex, dw, pr, true), expected, 1e-12, "float64 stages");
  }
  SUBCASE("a 5x5 depthwise kernel") {
    BlockData e = d;
    e.depthwise.kernel = random_tensor({5, 5, 24, 1}, gen, -0.5, 0.5);
    e.depthwise.window = ops::conv2d_window(9, 9, 5, 5, 1, 1, ops::ConvPadding::Same, "test");
    CHECK_FALSE(ops::inverted_residual_runs_fused(e.x, &e.expand, e.depthwise, e.project, true));
    CHECK(ops::inverted_residual_inference(e.x, &e.expand, e.depthwise, e.project, true).shape() == e.x.shape());
  }
  SUBCASE("a residual whose shapes differ is a ShapeError") {
    BlockData e = d;
    e.depthwise.window = ops::conv2d_window(9, 9, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
    CHECK_FALSE(ops::inverted_residual_runs_fused(e.x, &e.expand, e.depthwise, e.project, true));
    CHECK_THROWS_AS(ops::inverted_residual_inference(e.x, &e.expand, e.depthwise, e.project, true), ShapeError);
  }
  SUBCASE("a kernel of the wrong depth is a ShapeError from the stage that reads it") {
    BlockData e = d;
    e.project.kernel = random_tensor({1, 1, 23, 8}, gen);
    CHECK_FALSE(ops::inverted_residual_runs_fused(e.x, &e.expand, e.depthwise, e.project, true));
    CHECK_THROWS_AS(ops::inverted_residual_inference(e.x, &e.expand, e.depthwise, e.project, true), ShapeError);
  }
}

TEST_CASE("inverted_residual_inference from unfolded stages names a stage without its tensors") {
  // The stages reference the caller's tensors: a missing one is an error, not a null dereference.
  Generator gen(33);
  const Tensor x = random_tensor({1, 4, 4, 8}, gen), depthwise = random_tensor({3, 3, 8, 1}, gen),
               project = random_tensor({1, 1, 8, 8}, gen), ones = petal::ones({8}), zeros = petal::zeros({8});
  auto stage = [&](const Tensor& kernel, const ops::Conv2dWindow& window) {
    ops::ConvBatchNormStageInputs s;
    s.kernel = &kernel, s.gamma = &ones, s.beta = &zeros, s.moving_mean = &zeros, s.moving_variance = &ones;
    s.window = window;
    return s;
  };
  const ops::Conv2dWindow same = ops::conv2d_window(4, 4, 3, 3, 1, 1, ops::ConvPadding::Same, "test");
  const ops::Conv2dWindow pointwise = ops::conv2d_window(4, 4, 1, 1, 1, 1, ops::ConvPadding::Valid, "test");
  std::vector<ops::ConvBatchNormStageInputs> stages = {stage(depthwise, same), stage(project, pointwise)};
  CHECK(ops::inverted_residual_inference(x, stages, true).shape() == x.shape());
  stages[1].moving_variance = nullptr;
  CHECK_THROWS_WITH_AS(ops::inverted_residual_inference(x, stages, true),
                       doctest::Contains("lacks its kernel, gamma, beta or moving statistics"), ValueError);
}
