// Conv2D beyond the op registry (tests/ops runs the odd shapes, strides and
// paddings of every path against its own loops): the MobileNetV2 layer shapes
// at 192x192 and outputs streamed past the caches, forward and gradients
// against cpu::reference_* under every ISA and 1/2 threads; TensorFlow's
// asymmetric "same" padding by hand; bad arguments.
#include <doctest/doctest.h>

#include <vector>

#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/test_conv_support.hpp"

using namespace petal;
using namespace petal::conv_test;

namespace {

void check_conv_case(const ConvTestCase& c, Generator& gen) {
  INFO(describe(c, /*depthwise=*/false));
  ConvTestData d = make_case_data(c, /*depthwise=*/false, gen);
  const Tensor &x = d.x, &kernel = d.kernel, &bias = d.bias, &dy = d.dy;
  const ops::Conv2dWindow& win = d.window;
  std::vector<float>&y_ref = d.y_ref, &dx_ref = d.dx_ref, &dw_ref = d.dw_ref, &db_ref = d.db_ref;
  petal::cpu::reference_conv2d_forward(x.data<float>(), kernel.data<float>(), bias.data<float>(), y_ref.data(), d.g);
  petal::cpu::reference_conv2d_backward_input(dy.data<float>(), kernel.data<float>(), dx_ref.data(), d.g);
  petal::cpu::reference_conv2d_backward_kernel(dy.data<float>(), x.data<float>(), dw_ref.data(), d.g);
  petal::cpu::reference_channel_sum(dy.data<float>(), d.g.output_pixels(), d.g.out_c, db_ref.data());

  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    check_close(ops::conv2d(x, kernel, bias, win), y_ref, 2e-5, "forward");
    check_close(ops::conv2d(x, kernel, bias, win, /*relu6=*/true), relu6_of(y_ref), 2e-5, "forward + relu6");
    check_close(ops::conv2d_backward_input(dy, kernel, x.shape(), win), dx_ref, 2e-5, "input gradient");
    Tensor db;
    check_close(ops::conv2d_backward_kernel(dy, x, kernel.shape(), win, &db), dw_ref, 1e-4, "kernel gradient");
    check_close(db, db_ref, 1e-4, "bias gradient");
  });
}

}  // namespace

TEST_CASE("conv2d on the MobileNetV2 layer shapes at 192x192 (batch 1)") {
  Generator gen(12);
  using P = ops::ConvPadding;
  const std::vector<ConvTestCase> cases = {
      {1, 192, 192, 3, 32, 3, 3, 2, 2, P::Same, "Conv1"},
      {1, 96, 96, 16, 96, 1, 1, 1, 1, P::Same, "block_1_expand"},
      {1, 24, 24, 144, 32, 1, 1, 1, 1, P::Same, "block_3_project"},
      {1, 6, 6, 960, 320, 1, 1, 1, 1, P::Same, "block_16_project"},
      {1, 6, 6, 320, 1280, 1, 1, 1, 1, P::Same, "Conv_1"},
  };
  for (const ConvTestCase& c : cases) check_conv_case(c, gen);
}

TEST_CASE("conv2d Conv1 stem at batch 29 streams its output past the caches correctly") {
  // 29 x 96 x 96 x 32 floats is just above cpu::kStreamOutputThresholdBytes.
  Generator gen(13);
  using P = ops::ConvPadding;
  const ConvTestCase stem{29, 192, 192, 3, 32, 3, 3, 2, 2, P::Same, "Conv1, streamed output"};
  REQUIRE(stem.n * 96 * 96 * 32 * 4 >= cpu::kStreamOutputThresholdBytes);
  check_conv_case(stem, gen);
}

TEST_CASE("conv2d without bias streams outputs larger than the caches through the GEMM correctly") {
  // No bias, no ReLU6, above cpu::kStreamOutputThresholdBytes: the 1x1 and
  // im2col paths write C with non-temporal stores (forward only: the
  // backward passes do not stream).
  Generator gen(14);
  using P = ops::ConvPadding;
  const std::vector<ConvTestCase> cases = {
      {2, 96, 96, 16, 480, 1, 1, 1, 1, P::Same, "1x1, 16 -> 480"},
      {4, 96, 96, 5, 250, 3, 3, 1, 1, P::Same, "3x3 im2col, 5 -> 250 (ragged tiles)"},
  };
  for (const ConvTestCase& c : cases) {
    INFO(c.label);
    const Tensor x = random_tensor({c.n, c.h, c.w, c.c}, gen);
    const Tensor kernel = random_tensor({c.kh, c.kw, c.c, c.channels}, gen);
    const ops::Conv2dWindow win = ops::conv2d_window(c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.padding, "test");
    const cpu::ConvGeometry g = geometry(x.shape(), c.kh, c.kw, c.channels, win);
    REQUIRE(g.output_pixels() * g.out_c * 4 >= cpu::kStreamOutputThresholdBytes);
    std::vector<float> y_ref(static_cast<std::size_t>(g.output_pixels() * g.out_c));
    petal::cpu::reference_conv2d_forward(x.data<float>(), kernel.data<float>(), static_cast<const float*>(nullptr),
                                         y_ref.data(), g);
    for_each_isa_and_threads([&](const std::string& config) {
      INFO(config);
      check_close(ops::conv2d(x, kernel, Tensor(), win), y_ref, 2e-5, "streamed forward");
    });
  }
}

TEST_CASE("conv2d's direct path (3 input channels) gives the same bits on 1 to 4 threads") {
  // Inference claims its output rows in pieces, whichever thread is free:
  // who computes a row must not change it. Four threads on a two-core
  // machine also take pieces out of order.
  Generator gen(15);
  using P = ops::ConvPadding;
  const std::vector<ConvTestCase> cases = {
      {1, 192, 192, 3, 32, 3, 3, 2, 2, P::Same, "Conv1 at batch 1"},
      {3, 37, 29, 3, 20, 3, 3, 1, 1, P::Same, "odd sizes, stride 1, batch 3"},
      {1, 5, 300, 2, 8, 3, 3, 2, 2, P::Valid, "few rows"},
  };
  for (const ConvTestCase& c : cases) {
    INFO(c.label);
    const Tensor x = random_tensor({c.n, c.h, c.w, c.c}, gen);
    const Tensor kernel = random_tensor({c.kh, c.kw, c.c, c.channels}, gen);
    const Tensor bias = random_tensor({c.channels}, gen);
    const ops::Conv2dWindow win = ops::conv2d_window(c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.padding, "test");
    const cpu::ConvGeometry g = geometry(x.shape(), c.kh, c.kw, c.channels, win);
    std::vector<float> y_ref(static_cast<std::size_t>(g.output_pixels() * g.out_c));
    petal::cpu::reference_conv2d_forward(x.data<float>(), kernel.data<float>(), bias.data<float>(), y_ref.data(), g);
    check_same_bits_on_1_to_4_threads([&] { return ops::conv2d(x, kernel, bias, win, /*relu6=*/true); },
                                      [&](const Tensor& y) { check_close(y, relu6_of(y_ref), 2e-5, "one thread"); });
  }
}

TEST_CASE("TensorFlow 'same' padding: 3x3/2 on an even input pads only bottom and right") {
  // x = 0..15 on a 4x4 grid, kernel of ones: each output is the sum of its window.
  std::vector<float> values(16);
  for (int i = 0; i < 16; ++i) values[static_cast<std::size_t>(i)] = float(i);
  const Tensor x = from_vector(values, {1, 4, 4, 1});
  const Tensor kernel = ones({3, 3, 1, 1});
  const ops::Conv2dWindow win = ops::conv2d_window(4, 4, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  CHECK(win.pad_top == 0);
  CHECK(win.pad_bottom == 1);
  CHECK(win.pad_left == 0);
  CHECK(win.pad_right == 1);
  // Windows: rows {0,1,2} / {2,3}, columns {0,1,2} / {2,3}.
  const std::vector<float> expected = {0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 2 + 3 + 6 + 7 + 10 + 11,
                                       8 + 9 + 10 + 12 + 13 + 14, 10 + 11 + 14 + 15};
  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    CHECK(ops::conv2d(x, kernel, Tensor(), win).to_vector<float>() == expected);
  });
  // Odd input: the padding is symmetric.
  const ops::Conv2dWindow odd = ops::conv2d_window(5, 5, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  CHECK(odd.pad_top == 1);
  CHECK(odd.pad_bottom == 1);
  CHECK(ops::same_padding_before(4, 3, 2) == 0);
  CHECK(ops::same_padding_before(5, 3, 1) == 1);
  CHECK(ops::conv_output_size(5, 3, 2, ops::ConvPadding::Same, "t") == 3);
  CHECK(ops::conv_output_size(5, 3, 2, ops::ConvPadding::Valid, "t") == 2);
}

TEST_CASE("conv2d float64 (the gradient-check path) matches float32") {
  Generator gen(13);
  const Tensor x = random_tensor({2, 6, 5, 4}, gen), kernel = random_tensor({3, 3, 4, 3}, gen);
  const Tensor bias = random_tensor({3}, gen);
  const ops::Conv2dWindow win = ops::conv2d_window(6, 5, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  const Tensor y32 = ops::conv2d(x, kernel, bias, win, true);
  const Tensor y64 = ops::conv2d(x.to(DType::Float64), kernel.to(DType::Float64), bias.to(DType::Float64), win, true);
  CHECK(y64.dtype() == DType::Float64);
  check_close(y32, y64.to_vector<float>(), 1e-5, "float64 forward");
}

TEST_CASE("conv2d rejects bad arguments with ShapeError naming the op and shapes") {
  const Tensor x = zeros({1, 5, 5, 3});
  const ops::Conv2dWindow valid{};
  CHECK_THROWS_AS(ops::conv2d(x, zeros({3, 3, 4, 8}), Tensor(), valid), ShapeError);  // channel mismatch
  try {
    ops::conv2d(x, zeros({3, 3, 4, 8}), Tensor(), valid);
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    CHECK(what.find("conv2d") != std::string::npos);
    CHECK(what.find("[3, 3, 4, 8]") != std::string::npos);
    CHECK(what.find("[1, 5, 5, 3]") != std::string::npos);
  }
  CHECK_THROWS_AS(ops::conv2d(x, zeros({7, 7, 3, 8}), Tensor(), valid), ShapeError);   // window larger than input
  CHECK_THROWS_AS(ops::conv2d(zeros({0, 5, 5, 3}), zeros({3, 3, 3, 8}), Tensor(), valid), ShapeError);  // empty batch
  CHECK_THROWS_AS(ops::conv2d(x, zeros({3, 3, 3, 0}), Tensor(), valid), ShapeError);   // no output channels
  CHECK_THROWS_AS(ops::conv2d(x, zeros({3, 3, 3, 8}), zeros({7}), valid), ShapeError); // bias size
  CHECK_THROWS_AS(ops::conv2d(zeros({5, 5, 3}), zeros({3, 3, 3, 8}), Tensor(), valid), ShapeError);  // rank
  CHECK_THROWS_AS(ops::conv2d(x, zeros({3, 3, 3, 8}, DType::Float64), Tensor(), valid), DTypeError);
  CHECK_THROWS_AS(ops::conv_output_size(2, 3, 1, ops::ConvPadding::Valid, "conv2d"), ShapeError);
  CHECK_THROWS_AS(ops::conv_output_size(0, 3, 1, ops::ConvPadding::Same, "conv2d"), ShapeError);
  CHECK_THROWS_AS(ops::conv2d_backward_input(zeros({1, 2, 2, 8}), zeros({3, 3, 3, 8}), {1, 5, 5, 3}, valid),
                  ShapeError);  // gradient shape does not match the output [1, 3, 3, 8]
}
