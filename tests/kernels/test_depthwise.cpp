// DepthwiseConv2D beyond the op registry (tests/ops runs the kernel sizes,
// strides, multipliers and ragged channel counts against its own loops): the
// MobileNetV2 depthwise shapes at 192x192 and streamed outputs against
// cpu::reference_* under every ISA and 1/2 threads; the fused inference op
// (depthwise + folded batch norm + ReLU6) against the unfused sequence.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/test_conv_support.hpp"

using namespace petal;
using namespace petal::conv_test;

namespace {

// `window`, when given, replaces the case's Same or Valid padding.
void check_depthwise_case(const ConvTestCase& c, Generator& gen, const ops::Conv2dWindow* window = nullptr) {
  INFO(describe(c, /*depthwise=*/true));
  ConvTestData d = make_case_data(c, /*depthwise=*/true, gen);
  if (window != nullptr) {
    INFO("pads (top, bottom, left, right) " << window->pad_top << ", " << window->pad_bottom << ", "
                                            << window->pad_left << ", " << window->pad_right);
    d.window = *window;
    d.g = geometry(d.x.shape(), c.kh, c.kw, c.c * c.channels, d.window);
    d.dy = random_tensor({d.g.batch, d.g.out_h, d.g.out_w, d.g.out_c}, gen);
    d.y_ref.assign(static_cast<std::size_t>(d.g.output_pixels() * d.g.out_c), 0.0f);
  }
  const Tensor &x = d.x, &kernel = d.kernel, &bias = d.bias, &dy = d.dy;
  const ops::Conv2dWindow& win = d.window;
  const std::int64_t out_c = d.g.out_c;
  std::vector<float>&y_ref = d.y_ref, &dx_ref = d.dx_ref, &dw_ref = d.dw_ref, &db_ref = d.db_ref;
  petal::cpu::reference_depthwise_forward(x.data<float>(), kernel.data<float>(), bias.data<float>(), y_ref.data(), d.g);
  petal::cpu::reference_depthwise_backward_input(dy.data<float>(), kernel.data<float>(), dx_ref.data(), d.g);
  petal::cpu::reference_depthwise_backward_kernel(dy.data<float>(), x.data<float>(), dw_ref.data(), d.g);
  petal::cpu::reference_channel_sum(dy.data<float>(), d.g.output_pixels(), out_c, db_ref.data());

  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    check_close(ops::depthwise_conv2d(x, kernel, bias, win), y_ref, 1e-5, "forward");
    {
      // The kernel alone into NaNs, over two row ranges cut at an odd row: a
      // pixel it leaves unwritten shows (the op's output may reuse memory
      // that already holds the right answer).
      std::vector<float> y(y_ref.size(), std::nanf(""));
      const std::int64_t rows = d.g.batch * d.g.out_h, cut = rows / 2 | 1;
      const cpu::DepthwiseKernels& k = cpu::depthwise_kernels();
      k.forward(x.data<float>(), kernel.data<float>(), bias.data<float>(), y.data(), d.g, false, 0,
                std::min(cut, rows));
      k.forward(x.data<float>(), kernel.data<float>(), bias.data<float>(), y.data(), d.g, false, std::min(cut, rows),
                rows);
      check_close(from_vector(y), y_ref, 1e-5, "forward kernel");
    }
    check_close(ops::depthwise_conv2d(x, kernel, Tensor(), win, /*relu6=*/true), [&] {
      std::vector<float> v(y_ref);
      for (std::size_t i = 0; i < v.size(); ++i) v[i] -= bias.data<float>()[i % static_cast<std::size_t>(out_c)];
      return relu6_of(v);
    }(), 1e-5, "forward without bias + relu6");
    check_close(ops::depthwise_conv2d_backward_input(dy, kernel, x.shape(), win), dx_ref, 1e-5, "input gradient");
    Tensor db;
    check_close(ops::depthwise_conv2d_backward_kernel(dy, x, kernel.shape(), win, &db), dw_ref, 1e-4,
                "kernel gradient");
    check_close(db, db_ref, 1e-4, "bias gradient");
  });
}

}  // namespace

TEST_CASE("depthwise_conv2d on the MobileNetV2 depthwise shapes at 192x192 (batch 1)") {
  Generator gen(22);
  using P = ops::ConvPadding;
  const std::vector<ConvTestCase> cases = {
      {1, 96, 96, 32, 1, 3, 3, 1, 1, P::Same, "expanded_conv_depthwise"},
      {1, 96, 96, 96, 1, 3, 3, 2, 2, P::Same, "block_1_depthwise"},
      {1, 48, 48, 144, 1, 3, 3, 1, 1, P::Same, "block_2_depthwise"},
      {1, 24, 24, 192, 1, 3, 3, 1, 1, P::Same, "block_4_depthwise"},
      {1, 12, 12, 384, 1, 3, 3, 1, 1, P::Same, "block_7_depthwise"},
      {1, 12, 12, 576, 1, 3, 3, 2, 2, P::Same, "block_13_depthwise"},
      {1, 6, 6, 960, 1, 3, 3, 1, 1, P::Same, "block_14_depthwise"},
  };
  for (const ConvTestCase& c : cases) check_depthwise_case(c, gen);
}

TEST_CASE("depthwise_conv2d 3x3 forward tiles on every row width, height and channel tail") {
  // The forward pass tiles the rows: AVX-512 in 2 x 8 and 2 x 4 pixels,
  // AVX2 at stride 1 in 2 x 3 and 2 x 1, otherwise rows of 4, the tiles at
  // the ends of a row leaving out a padding column, a last tile overlapping
  // the one before it; rows narrower than a tile go pixel by pixel. Widths
  // 1-13 leave every remainder, odd heights and two images end bands of two
  // rows early, 13 and 20 channels leave a vector tail, and 2 threads split
  // the rows anywhere.
  Generator gen(23);
  using P = ops::ConvPadding;
  for (std::int64_t w = 1; w <= 13; ++w)
    for (std::int64_t h : {3, 5, 8})
      for (std::int64_t c : {8, 13, 20})
        for (std::int64_t stride : {1, 2})
          for (P padding : {P::Same, P::Valid}) {
            if (padding == P::Valid && (h < 3 || w < 3)) continue;
            check_depthwise_case({2, h, w, c, 1, 3, 3, stride, stride, padding, "tiles"}, gen);
          }
}

TEST_CASE("depthwise_conv2d 3x3 forward with explicit paddings of 0 to 2 on each side") {
  // Rows above and below the image are read as zeros; a window more than
  // one column outside the image on the left or right goes pixel by pixel.
  Generator gen(24);
  struct Pads {
    std::int64_t top, bottom, left, right;
  };
  for (const Pads p : {Pads{2, 0, 2, 0}, Pads{0, 2, 0, 2}, Pads{2, 2, 2, 2}, Pads{1, 2, 0, 1}, Pads{0, 1, 2, 1}})
    for (std::int64_t w : {1, 3, 6, 11})
      for (std::int64_t stride : {1, 2}) {
        ops::Conv2dWindow window;
        window.stride_h = window.stride_w = stride;
        window.pad_top = p.top, window.pad_bottom = p.bottom, window.pad_left = p.left, window.pad_right = p.right;
        if (w + p.left + p.right < 3) continue;
        check_depthwise_case({2, 5, w, 20, 1, 3, 3, stride, stride, ops::ConvPadding::Same, "explicit pads"}, gen,
                             &window);
      }
}

TEST_CASE("depthwise_conv2d forward streams outputs larger than the caches correctly") {
  // Above cpu::kStreamOutputThresholdBytes the forward kernel writes with
  // non-temporal stores where a pixel is vector-aligned; 264 channels leave
  // every other pixel unaligned, so both store paths meet in one output.
  Generator gen(23);
  const std::int64_t n = 4, h = 96, w = 96, c = 264;
  REQUIRE(n * h * w * c * 4 >= cpu::kStreamOutputThresholdBytes);
  const Tensor x = random_tensor({n, h, w, c}, gen), kernel = random_tensor({3, 3, c, 1}, gen);
  const Tensor bias = random_tensor({c}, gen);
  const ops::Conv2dWindow win = ops::conv2d_window(h, w, 3, 3, 1, 1, ops::ConvPadding::Same, "test");
  const cpu::ConvGeometry g = geometry(x.shape(), 3, 3, c, win);
  std::vector<float> y_ref(static_cast<std::size_t>(g.output_pixels() * c));
  petal::cpu::reference_depthwise_forward(x.data<float>(), kernel.data<float>(), bias.data<float>(), y_ref.data(), g);
  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    check_close(ops::depthwise_conv2d(x, kernel, bias, win), y_ref, 1e-5, "streamed forward");
    check_close(ops::depthwise_conv2d(x, kernel, bias, win, /*relu6=*/true), relu6_of(y_ref), 1e-5,
                "streamed forward + relu6");
  });
}

TEST_CASE("fused depthwise/1x1 conv + folded batch norm + ReLU6 inference equals the unfused ops") {
  Generator gen(23);
  const std::int64_t c = 40;
  const Tensor x = random_tensor({2, 9, 8, c}, gen);
  const Tensor dw_kernel = random_tensor({3, 3, c, 1}, gen);
  const Tensor pw_kernel = random_tensor({1, 1, c, 24}, gen);
  auto make_bn = [&](std::int64_t ch) {
    const Tensor gamma = random_tensor({ch}, gen, 0.5, 2.0), beta = random_tensor({ch}, gen);
    const Tensor mean = random_tensor({ch}, gen), var = random_tensor({ch}, gen, 0.1, 3.0);
    return ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
  };
  const ops::FoldedBatchNorm bn_dw = make_bn(c), bn_pw = make_bn(24);
  const ops::Conv2dWindow dw_win = ops::conv2d_window(9, 8, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  const ops::Conv2dWindow pw_win{};
  const std::vector<float> dw_expected =
      ops::channel_affine(ops::depthwise_conv2d(x, dw_kernel, Tensor(), dw_win), bn_dw.scale, bn_dw.shift, true)
          .to_vector<float>();
  const std::vector<float> pw_expected =
      ops::channel_affine(ops::conv2d(x, pw_kernel, Tensor(), pw_win), bn_pw.scale, bn_pw.shift, false)
          .to_vector<float>();
  // A 3x3 convolution with bias (the im2col GEMM path scales in its
  // epilogue) and an RGB stem (the direct path folds into the kernel).
  const Tensor conv_kernel = random_tensor({3, 3, c, 16}, gen), conv_bias = random_tensor({16}, gen);
  const ops::FoldedBatchNorm bn_conv = make_bn(16);
  const ops::Conv2dWindow conv_win = ops::conv2d_window(9, 8, 3, 3, 1, 1, ops::ConvPadding::Same, "test");
  const std::vector<float> conv_expected =
      ops::channel_affine(ops::conv2d(x, conv_kernel, conv_bias, conv_win), bn_conv.scale, bn_conv.shift, true)
          .to_vector<float>();
  const Tensor rgb = random_tensor({2, 10, 11, 3}, gen), stem_kernel = random_tensor({3, 3, 3, 16}, gen);
  const ops::Conv2dWindow stem_win = ops::conv2d_window(10, 11, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  const std::vector<float> stem_expected =
      ops::channel_affine(ops::conv2d(rgb, stem_kernel, conv_bias, stem_win), bn_conv.scale, bn_conv.shift, true)
          .to_vector<float>();
  for_each_isa_and_threads([&](const std::string& config) {
    INFO(config);
    check_close(ops::depthwise_bn_relu6_inference(x, dw_kernel, Tensor(), bn_dw, dw_win), dw_expected, 1e-5,
                "depthwise + bn + relu6");
    check_close(ops::conv2d_bn_relu6_inference(x, pw_kernel, Tensor(), bn_pw, pw_win, /*relu6=*/false), pw_expected,
                1e-5, "1x1 + bn");
    check_close(ops::conv2d_bn_relu6_inference(x, conv_kernel, conv_bias, bn_conv, conv_win), conv_expected, 1e-5,
                "3x3 + bias + bn + relu6");
    check_close(ops::conv2d_bn_relu6_inference(rgb, stem_kernel, conv_bias, bn_conv, stem_win), stem_expected, 1e-5,
                "RGB stem + bias + bn + relu6");
  });
}

TEST_CASE("depthwise_conv2d rejects bad arguments") {
  const Tensor x = zeros({1, 5, 5, 8});
  const ops::Conv2dWindow valid{};
  CHECK_THROWS_AS(ops::depthwise_conv2d(x, zeros({3, 3, 6, 1}), Tensor(), valid), ShapeError);
  CHECK_THROWS_AS(ops::depthwise_conv2d(x, zeros({6, 6, 8, 1}), Tensor(), valid), ShapeError);
  CHECK_THROWS_AS(ops::depthwise_conv2d(zeros({1, 0, 5, 8}), zeros({3, 3, 8, 1}), Tensor(), valid), ShapeError);
  CHECK_THROWS_AS(ops::depthwise_conv2d(x, zeros({3, 3, 8, 2}), zeros({8}), valid), ShapeError);  // bias is C*M
  CHECK_THROWS_AS(ops::depthwise_bn_relu6_inference(x, zeros({3, 3, 8, 1}), Tensor(),
                                                    ops::FoldedBatchNorm{zeros({7}), zeros({7})}, valid),
                  ShapeError);
}
