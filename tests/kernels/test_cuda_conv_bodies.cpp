// The per-element bodies of the CUDA convolution-family kernels
// (kernels/cuda/conv/*_body.hpp) run on the CPU over every output index,
// composed exactly as the .cu kernels compose them (im2col chunks, the
// cuBLAS calls of gemm_plan.hpp through a BLAS-definition GEMM, col2im
// gathers, the chunked deterministic column reduction), and
// compared with the CPU ops on random shapes: odd sizes, stride 1 and 2 on
// even and odd inputs, TensorFlow's asymmetric "same" padding, "valid",
// batch 1, depthwise multipliers 1 and 2, and scaled-down MobileNetV2 layers.
// Needs no GPU: it checks the index math the kernels share with this file.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/conv/batch_norm_body.hpp"
#include "kernels/cuda/conv/conv_bn_body.hpp"
#include "kernels/cuda/conv/conv_body.hpp"
#include "kernels/cuda/conv/depthwise_body.hpp"
#include "kernels/cuda/conv/gemm_plan.hpp"
#include "kernels/cuda/conv/pool_body.hpp"
#include "kernels/cuda/conv/reduce_body.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/test_conv_support.hpp"

using namespace petal;
using namespace petal::conv_test;
namespace body = petal::cuda_body;

namespace {

struct ConvCase {
  Shape x;  // [N, H, W, C]
  std::int64_t kh, kw, stride;
  ops::ConvPadding padding;
  std::int64_t out_c;  // Cout, or the multiplier for depthwise
};

std::string case_name(const ConvCase& c) {
  return shape_str(c.x) + " k" + std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" +
         std::to_string(c.stride) + (c.padding == ops::ConvPadding::Same ? " same" : " valid") + " out " +
         std::to_string(c.out_c);
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {{2, 7, 5, 3}, 3, 3, 1, ops::ConvPadding::Same, 4},
      {{1, 8, 8, 3}, 3, 3, 2, ops::ConvPadding::Same, 8},    // stem, even input: pads bottom/right only
      {{2, 9, 7, 5}, 3, 3, 2, ops::ConvPadding::Same, 6},    // odd input, stride 2
      {{1, 6, 9, 4}, 3, 2, 2, ops::ConvPadding::Valid, 3},
      {{2, 5, 5, 6}, 1, 1, 1, ops::ConvPadding::Same, 7},    // pointwise
      {{1, 6, 6, 4}, 1, 1, 2, ops::ConvPadding::Valid, 5},
      {{3, 4, 6, 2}, 5, 3, 1, ops::ConvPadding::Same, 3},    // kernel larger than the input height
      {{1, 12, 12, 3}, 3, 3, 2, ops::ConvPadding::Same, 16}, // MobileNetV2 Conv1 scaled down
      {{2, 6, 6, 16}, 1, 1, 1, ops::ConvPadding::Same, 48},  // block expand scaled down
  };
  return cases;
}

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// The bodies take the 64-bit geometry or the 32-bit one the kernels prefer,
// each also wrapped as the multiplier-1 fast path where out_c == in_c; the
// tests that use a geometry run once with each (PETAL_BOTH_GEOMETRIES).
bool g_narrow = false, g_unit = false;

template <class Fn>
auto on_geometry(const cpu::ConvGeometry& g, Fn&& fn) -> decltype(fn(g)) {
  using R = decltype(fn(g));
  const bool unit = g_unit && g.out_c == g.in_c;
  if (g_narrow) {
    REQUIRE(body::fits_32bit(g));
    const body::ConvGeometry32 n = body::narrow(g);
    return unit ? static_cast<R>(fn(body::unit_multiplier(n))) : static_cast<R>(fn(n));
  }
  return unit ? fn(body::unit_multiplier(g)) : fn(g);
}

#define PETAL_BOTH_GEOMETRIES()                                                    \
  SUBCASE("64-bit geometry") { g_narrow = false, g_unit = false; }                 \
  SUBCASE("32-bit geometry") { g_narrow = true, g_unit = false; }                  \
  SUBCASE("64-bit geometry, multiplier-1 path") { g_narrow = false, g_unit = true; } \
  SUBCASE("32-bit geometry, multiplier-1 path") { g_narrow = true, g_unit = true; }

// What cublasGemmEx computes for a gemm_plan.hpp call, by the BLAS
// definition: column-major C (m x n) = op(A) op(B) + beta C, with cuBLAS's
// leading-dimension requirements checked. Sums in double.
void blas_gemm(const body::GemmCall& call, const float* a, const float* b, float beta, float* c) {
  REQUIRE(call.lda >= std::max<std::int64_t>(1, call.transpose_a ? call.k : call.m));
  REQUIRE(call.ldb >= std::max<std::int64_t>(1, call.transpose_b ? call.n : call.k));
  REQUIRE(call.ldc >= std::max<std::int64_t>(1, call.m));
  for (std::int64_t i = 0; i < call.m; ++i)
    for (std::int64_t j = 0; j < call.n; ++j) {
      double s = 0.0;
      for (std::int64_t l = 0; l < call.k; ++l) {
        const float av = call.transpose_a ? a[l + i * call.lda] : a[i + l * call.lda];
        const float bv = call.transpose_b ? b[j + l * call.ldb] : b[l + j * call.ldb];
        s += double(av) * double(bv);
      }
      float& out = c[i + j * call.ldc];
      out = float(s + (beta == 0.0f ? 0.0 : double(beta) * double(out)));
    }
}

// The two kernels of the column reduction, run in their launch order.
template <class Term>
std::vector<body::Sum2> column_reduce(const Term& term, std::int64_t rows, std::int64_t columns) {
  const body::ReducePlan plan = body::make_reduce_plan(rows, columns);
  REQUIRE(plan.chunks * plan.rows_per_chunk >= rows);
  REQUIRE((plan.chunks - 1) * plan.rows_per_chunk < rows);
  std::vector<body::Sum2> partial(static_cast<std::size_t>(plan.chunks * columns));
  for (std::int64_t chunk = 0; chunk < plan.chunks; ++chunk)
    for (std::int64_t col = 0; col < columns; ++col) {
      body::Sum2 block;
      for (int lane = 0; lane < body::kReduceThreadsY; ++lane)
        block = block + body::reduce_lane(term, rows, plan.rows_per_chunk, chunk, lane, col);
      partial[std::size_t(chunk * columns + col)] = block;
    }
  std::vector<body::Sum2> out(static_cast<std::size_t>(columns));
  for (std::int64_t col = 0; col < columns; ++col)
    for (std::int64_t chunk = 0; chunk < plan.chunks; ++chunk)
      out[std::size_t(col)] = out[std::size_t(col)] + partial[std::size_t(chunk * columns + col)];
  return out;
}

std::vector<float> firsts(const std::vector<body::Sum2>& s) {
  std::vector<float> v;
  for (const body::Sum2& e : s) v.push_back(float(e.first));
  return v;
}

// The im2col GEMM path of conv2d forward over chunks of `chunk_images`.
std::vector<float> conv_forward_im2col(const std::vector<float>& x, const std::vector<float>& w,
                                       const std::vector<float>& bias, const cpu::ConvGeometry& g, bool relu6,
                                       std::int64_t chunk_images) {
  const std::int64_t k_count = body::conv_columns(g);
  std::vector<float> y(static_cast<std::size_t>(g.output_pixels() * g.out_c));
  for (std::int64_t first = 0; first < g.batch; first += chunk_images) {
    const std::int64_t count = std::min(chunk_images, g.batch - first);
    const cpu::ConvGeometry cg = body::chunk_geometry(g, count);
    const float* xc = x.data() + first * g.in_h * g.in_w * g.in_c;
    std::vector<float> col(static_cast<std::size_t>(cg.output_pixels() * k_count));
    for (std::int64_t p = 0; p < cg.output_pixels(); ++p)
      for (std::int64_t k = 0; k < k_count; ++k) col[std::size_t(p * k_count + k)] = on_geometry(cg, [&](const auto& gg) { return body::im2col_element(xc, gg, p, k); });
    const std::int64_t base = first * g.out_h * g.out_w * g.out_c;
    blas_gemm(body::forward_gemm(cg.output_pixels(), k_count, g.out_c), w.data(), col.data(), 0.0f, y.data() + base);
    for (std::int64_t i = base; i < base + cg.output_pixels() * g.out_c; ++i)
      y[std::size_t(i)] = body::conv_epilogue(y[std::size_t(i)], bias.empty() ? nullptr : bias.data(), i % g.out_c, relu6);
  }
  return y;
}

}  // namespace

TEST_CASE("conv2d forward: im2col + GEMM (chunked) and the direct kernel match ops::conv2d") {
  PETAL_BOTH_GEOMETRIES()
  Generator gen(71);
  for (const ConvCase& c : conv_cases()) {
    const Tensor x = random_tensor(c.x, gen), w = random_tensor({c.kh, c.kw, c.x[3], c.out_c}, gen);
    const Tensor bias = random_tensor({c.out_c}, gen, 2.0, 5.0);  // pushes some outputs past 6
    const ops::Conv2dWindow win = ops::conv2d_window(c.x[1], c.x[2], c.kh, c.kw, c.stride, c.stride, c.padding, "t");
    const cpu::ConvGeometry g = geometry(c.x, c.kh, c.kw, c.out_c, win);
    for (bool relu6 : {false, true}) {
      const Tensor expected = ops::conv2d(x, w, bias, win, relu6);
      REQUIRE(expected.shape() == Shape({g.batch, g.out_h, g.out_w, g.out_c}));
      for (std::int64_t chunk : {std::int64_t{1}, std::int64_t{2}, g.batch}) {
        const std::vector<float> y = conv_forward_im2col(values(x), values(w), values(bias), g, relu6, chunk);
        check_close(from_vector(y, expected.shape()), values(expected), 1e-5,
                    case_name(c) + " im2col chunk " + std::to_string(chunk));
      }
      std::vector<float> direct(static_cast<std::size_t>(expected.numel()));
      const std::vector<float> xv = values(x), wv = values(w), bv = values(bias);
      for (std::int64_t o = 0; o < expected.numel(); ++o)
        direct[std::size_t(o)] =
            body::conv_epilogue(on_geometry(g, [&](const auto& gg) { return body::conv2d_direct_element(xv.data(), wv.data(), gg, o); }), bv.data(), o % g.out_c, relu6);
      check_close(from_vector(direct, expected.shape()), values(expected), 1e-5, case_name(c) + " direct");
    }
  }
}

TEST_CASE("conv2d backward: col2im gather and the chunked kernel-gradient GEMM match the CPU ops") {
  PETAL_BOTH_GEOMETRIES()
  Generator gen(72);
  for (const ConvCase& c : conv_cases()) {
    const ops::Conv2dWindow win = ops::conv2d_window(c.x[1], c.x[2], c.kh, c.kw, c.stride, c.stride, c.padding, "t");
    const Tensor x = random_tensor(c.x, gen), w = random_tensor({c.kh, c.kw, c.x[3], c.out_c}, gen);
    const cpu::ConvGeometry g = geometry(c.x, c.kh, c.kw, c.out_c, win);
    const Tensor dy = random_tensor({g.batch, g.out_h, g.out_w, g.out_c}, gen);
    const std::vector<float> xv = values(x), wv = values(w), dyv = values(dy);
    const std::int64_t k_count = body::conv_columns(g);
    if (c.kh == 1 && c.kw == 1 && c.stride == 1) {
      // The 1x1 stride-1 path hands x to the GEMM as the im2col matrix: check that it is.
      bool identity = true;
      for (std::int64_t p = 0; p < g.output_pixels(); ++p)
        for (std::int64_t k = 0; k < k_count; ++k)
          identity = identity && on_geometry(g, [&](const auto& gg) { return std::int64_t(body::im2col_source(gg, p, k)); }) == p * k_count + k;
      CHECK(identity);
    }

    const Tensor dx_expected = ops::conv2d_backward_input(dy, w, x.shape(), win);
    Tensor db_expected;
    const Tensor dw_expected = ops::conv2d_backward_kernel(dy, x, w.shape(), win, &db_expected);

    for (std::int64_t chunk_images : {std::int64_t{1}, g.batch}) {
      std::vector<float> dx(static_cast<std::size_t>(x.numel())), dw(static_cast<std::size_t>(w.numel()), 0.0f);
      for (std::int64_t first = 0; first < g.batch; first += chunk_images) {
        const std::int64_t count = std::min(chunk_images, g.batch - first);
        const cpu::ConvGeometry cg = body::chunk_geometry(g, count);
        const std::int64_t in_base = first * g.in_h * g.in_w * g.in_c, out_base = first * g.out_h * g.out_w * g.out_c;
        const std::vector<float> dyc(dyv.begin() + out_base, dyv.begin() + out_base + cg.output_pixels() * g.out_c);
        // dcol [P, K] = dy [P, Cout] x W^T, then the gather.
        std::vector<float> dcol(static_cast<std::size_t>(cg.output_pixels() * k_count));
        blas_gemm(body::backward_input_gemm(cg.output_pixels(), k_count, g.out_c), wv.data(), dyc.data(), 0.0f,
                  dcol.data());
        for (std::int64_t i = 0; i < cg.input_pixels() * g.in_c; ++i)
          dx[std::size_t(in_base + i)] = on_geometry(cg, [&](const auto& gg) { return body::col2im_gather(dcol.data(), gg, i); });
        // dW [K, Cout] += col^T x dy (the GEMM's beta is 1 after the first chunk).
        std::vector<float> col(static_cast<std::size_t>(cg.output_pixels() * k_count));
        for (std::int64_t p = 0; p < cg.output_pixels(); ++p)
          for (std::int64_t k = 0; k < k_count; ++k)
            col[std::size_t(p * k_count + k)] = on_geometry(cg, [&](const auto& gg) { return body::im2col_element(xv.data() + in_base, gg, p, k); });
        blas_gemm(body::backward_kernel_gemm(cg.output_pixels(), k_count, g.out_c), dyc.data(), col.data(),
                  first == 0 ? 0.0f : 1.0f, dw.data());
      }
      const std::string what = case_name(c) + " chunk " + std::to_string(chunk_images);
      check_close(from_vector(dx, x.shape()), values(dx_expected), 1e-5, what + " dx");
      check_close(from_vector(dw, w.shape()), values(dw_expected), 1e-4, what + " dw");
    }
    const std::vector<float> db =
        firsts(column_reduce(body::ChannelSumTerm<float>{dyv.data(), g.out_c}, g.output_pixels(), g.out_c));
    check_close(from_vector(db), values(db_expected), 1e-5, case_name(c) + " bias gradient");
  }
}

TEST_CASE("im2col chunks stay within the workspace and cover the batch") {
  cpu::ConvGeometry g;
  g.batch = 7, g.in_h = g.in_w = 10, g.in_c = 3, g.out_h = g.out_w = 5, g.out_c = 8, g.kernel_h = g.kernel_w = 3;
  const std::int64_t per_image = 25 * 27;
  CHECK(body::im2col_chunk_images(g, per_image * 3) == 3);
  CHECK(body::im2col_chunk_images(g, per_image * 3 + per_image - 1) == 3);
  CHECK(body::im2col_chunk_images(g, 1) == 1);             // one image even when it does not fit
  CHECK(body::im2col_chunk_images(g, per_image * 100) == 7);
}

TEST_CASE("depthwise forward, input gradient and kernel gradient match the CPU ops") {
  PETAL_BOTH_GEOMETRIES()
  Generator gen(73);
  const std::vector<ConvCase> cases = {
      {{2, 7, 5, 3}, 3, 3, 1, ops::ConvPadding::Same, 1},
      {{1, 8, 8, 4}, 3, 3, 2, ops::ConvPadding::Same, 1},   // even input, stride 2: bottom/right padding
      {{2, 9, 7, 5}, 3, 3, 2, ops::ConvPadding::Same, 2},   // multiplier 2
      {{1, 6, 9, 2}, 3, 2, 2, ops::ConvPadding::Valid, 3},
      {{3, 5, 5, 7}, 5, 5, 1, ops::ConvPadding::Same, 1},
      {{2, 12, 12, 16}, 3, 3, 2, ops::ConvPadding::Same, 1},  // MobileNetV2 block 2 depthwise scaled down
      {{1, 6, 6, 24}, 3, 3, 1, ops::ConvPadding::Same, 1},
  };
  for (const ConvCase& c : cases) {
    const std::int64_t m = c.out_c, out_c = c.x[3] * m;
    const ops::Conv2dWindow win = ops::conv2d_window(c.x[1], c.x[2], c.kh, c.kw, c.stride, c.stride, c.padding, "t");
    const Tensor x = random_tensor(c.x, gen), w = random_tensor({c.kh, c.kw, c.x[3], m}, gen);
    const Tensor bias = random_tensor({out_c}, gen, 2.0, 5.0);
    const cpu::ConvGeometry g = geometry(c.x, c.kh, c.kw, out_c, win);
    const std::vector<float> xv = values(x), wv = values(w), bv = values(bias);
    for (bool relu6 : {false, true}) {
      const Tensor expected = ops::depthwise_conv2d(x, w, bias, win, relu6);
      std::vector<float> y(static_cast<std::size_t>(expected.numel()));
      for (std::int64_t o = 0; o < expected.numel(); ++o)
        y[std::size_t(o)] =
            body::conv_epilogue(on_geometry(g, [&](const auto& gg) { return body::depthwise_output_element(xv.data(), wv.data(), gg, o); }), bv.data(), o % out_c, relu6);
      check_close(from_vector(y, expected.shape()), values(expected), 1e-5, case_name(c) + " forward");
    }
    const Tensor dy = random_tensor({g.batch, g.out_h, g.out_w, out_c}, gen);
    const std::vector<float> dyv = values(dy);
    const Tensor dx_expected = ops::depthwise_conv2d_backward_input(dy, w, x.shape(), win);
    std::vector<float> dx(static_cast<std::size_t>(x.numel()));
    for (std::int64_t i = 0; i < x.numel(); ++i)
      dx[std::size_t(i)] = on_geometry(g, [&](const auto& gg) { return body::depthwise_input_grad_element(dyv.data(), wv.data(), gg, i); });
    check_close(from_vector(dx, x.shape()), values(dx_expected), 1e-5, case_name(c) + " input gradient");

    Tensor db_expected;
    const Tensor dw_expected = ops::depthwise_conv2d_backward_kernel(dy, x, w.shape(), win, &db_expected);
    struct KernelGradTerm {
      const float *dy, *x;
      cpu::ConvGeometry g;
      body::Sum2 operator()(std::int64_t p, std::int64_t col) const {
        return {double(on_geometry(g, [&](const auto& gg) { return body::depthwise_kernel_grad_term(dy, x, gg, p, col); })), 0.0};
      }
    };
    const std::vector<float> dw =
        firsts(column_reduce(KernelGradTerm{dyv.data(), xv.data(), g}, g.output_pixels(), g.taps() * out_c));
    check_close(from_vector(dw, w.shape()), values(dw_expected), 1e-5, case_name(c) + " kernel gradient");
    const std::vector<float> db =
        firsts(column_reduce(body::ChannelSumTerm<float>{dyv.data(), out_c}, g.output_pixels(), out_c));
    check_close(from_vector(db), values(db_expected), 1e-5, case_name(c) + " bias gradient");
  }
}

TEST_CASE("batch norm training forward and backward (+relu6) through the column reductions") {
  Generator gen(74);
  const std::vector<Shape> shapes = {{2, 5, 3, 7}, {1, 1, 1, 3}, {3, 4}, {4, 9, 9, 40}, {1, 300, 33}};
  for (const Shape& shape : shapes)
    for (bool relu6 : {false, true}) {
      const std::int64_t c = shape.back(), rows = shape_numel(shape) / c;
      const Tensor x = random_tensor(shape, gen, -2.0, 3.0);
      const Tensor gamma = random_tensor({c}, gen, 0.5, 2.0), beta = random_tensor({c}, gen, 0.0, 4.0);
      const double eps = 1e-3;
      Tensor mean_expected, var_expected;
      const Tensor y_expected = ops::batch_norm_training(x, gamma, beta, eps, relu6, mean_expected, var_expected);
      const std::vector<float> xv = values(x), gv = values(gamma), bv = values(beta);
      const std::vector<body::Sum2> moments = column_reduce(body::ChannelMomentsTerm<float>{xv.data(), c}, rows, c);
      std::vector<float> mean(static_cast<std::size_t>(c)), var(static_cast<std::size_t>(c)), y(xv.size());
      std::vector<body::MeanInvStd> stats(static_cast<std::size_t>(c));
      for (std::size_t j = 0; j < std::size_t(c); ++j) {
        const body::ChannelStats s = body::channel_stats(moments[j], rows);
        mean[j] = float(s.mean);
        var[j] = float(s.biased_variance);
        stats[j] = body::mean_inv_std(s.mean, s.biased_variance, eps);
      }
      for (std::size_t i = 0; i < xv.size(); ++i) {
        const std::size_t j = i % std::size_t(c);
        y[i] = body::batch_norm_element(xv[i], stats[j].mean, stats[j].inv_std, gv[j], bv[j], relu6);
      }
      const std::string what = shape_str(shape) + (relu6 ? " relu6" : "");
      // Float sums of up to 324 rows in another order than the CPU op's: a
      // few ulps apart (10 ulps, 1.2e-6 relative, for [4, 9, 9, 40] on a
      // Zen 3 machine); biased against unbiased variance would still be
      // 0.3% off.
      check_close(from_vector(mean), values(mean_expected), 1e-5, what + " mean");
      check_close(from_vector(var), values(var_expected), 1e-5, what + " variance");
      check_close(from_vector(y, shape), values(y_expected), 1e-5, what + " y");

      const Tensor dy = random_tensor(shape, gen);
      const std::vector<float> dyv = values(dy), mv = values(mean_expected), vv = values(var_expected);
      const ops::BatchNormGrads expected =
          ops::batch_norm_backward(dy, x, gamma, beta, mean_expected, var_expected, eps, relu6);
      std::vector<body::MeanInvStd> saved(static_cast<std::size_t>(c));
      for (std::size_t j = 0; j < std::size_t(c); ++j) saved[j] = body::mean_inv_std(mv[j], vv[j], eps);
      const std::vector<body::Sum2> grad_sums = column_reduce(
          body::BatchNormBackwardTerm<float>{dyv.data(), xv.data(), gv.data(), bv.data(), saved.data(), c, relu6}, rows,
          c);
      std::vector<float> dx(xv.size()), dgamma(static_cast<std::size_t>(c)), dbeta(static_cast<std::size_t>(c));
      for (std::size_t i = 0; i < xv.size(); ++i) {
        const std::size_t j = i % std::size_t(c);
        dx[i] = body::batch_norm_input_grad(dyv[i], xv[i], gv[j], bv[j], saved[j], relu6, grad_sums[j], rows);
      }
      for (std::size_t j = 0; j < std::size_t(c); ++j) {
        dgamma[j] = float(grad_sums[j].second);
        dbeta[j] = float(grad_sums[j].first);
      }
      check_close(from_vector(dx, shape), values(expected.x), 1e-5, what + " dx");
      check_close(from_vector(dgamma), values(expected.gamma), 1e-5, what + " dgamma");
      check_close(from_vector(dbeta), values(expected.beta), 1e-5, what + " dbeta");
    }
}

TEST_CASE("training fusion: depthwise/direct conv output written inside the moments reduction") {
  PETAL_BOTH_GEOMETRIES()
  Generator gen(78);
  struct FusedCase {
    ConvCase conv;
    bool depthwise;
  };
  const std::vector<FusedCase> cases = {
      {{{2, 12, 12, 16}, 3, 3, 2, ops::ConvPadding::Same, 1}, true},
      {{{1, 9, 7, 5}, 3, 3, 1, ops::ConvPadding::Same, 2}, true},
      {{{2, 16, 16, 3}, 3, 3, 2, ops::ConvPadding::Same, 8}, false},  // the stem
  };
  for (const FusedCase& fc : cases) {
    const ConvCase& c = fc.conv;
    const std::int64_t out_c = fc.depthwise ? c.x[3] * c.out_c : c.out_c;
    const ops::Conv2dWindow win = ops::conv2d_window(c.x[1], c.x[2], c.kh, c.kw, c.stride, c.stride, c.padding, "t");
    const cpu::ConvGeometry g = geometry(c.x, c.kh, c.kw, out_c, win);
    REQUIRE((fc.depthwise || body::uses_direct_kernel(g)));
    const Tensor x = random_tensor(c.x, gen), w = random_tensor({c.kh, c.kw, c.x[3], c.out_c}, gen);
    const Tensor gamma = random_tensor({out_c}, gen, 0.5, 2.0), beta = random_tensor({out_c}, gen, 0.0, 4.0);
    const ops::ConvBatchNormResult expected =
        fc.depthwise ? ops::depthwise_conv2d_batch_norm_training(x, w, win, gamma, beta, 1e-3, true)
                     : ops::conv2d_batch_norm_training(x, w, win, gamma, beta, 1e-3, true);
    const std::vector<float> xv = values(x), wv = values(w);
    std::vector<float> conv_out(static_cast<std::size_t>(g.output_pixels() * out_c), NAN);
    const std::vector<body::Sum2> moments = on_geometry(g, [&](const auto& gg) {
      using G = std::decay_t<decltype(gg)>;
      return fc.depthwise
                 ? column_reduce(body::ConvOutputMomentsTerm<float, G, true>{xv.data(), wv.data(), conv_out.data(), gg},
                                 g.output_pixels(), out_c)
                 : column_reduce(body::ConvOutputMomentsTerm<float, G, false>{xv.data(), wv.data(), conv_out.data(), gg},
                                 g.output_pixels(), out_c);
    });
    std::vector<float> mean, var;
    for (const body::Sum2& m : moments) {
      const body::ChannelStats st = body::channel_stats(m, g.output_pixels());
      mean.push_back(float(st.mean));
      var.push_back(float(st.biased_variance));
    }
    const std::string what = case_name(c) + (fc.depthwise ? " depthwise" : " direct");
    check_close(from_vector(conv_out, expected.conv_out.shape()), values(expected.conv_out), 1e-5, what + " conv_out");
    check_close(from_vector(mean), values(expected.mean), 1e-5, what + " mean");
    check_close(from_vector(var), values(expected.biased_variance), 1e-5, what + " variance");
  }
}

TEST_CASE("one-pass batch statistics in double keep the variance of data far from zero") {
  Generator gen(77);
  const Shape shape{8, 9, 9, 5};
  const Tensor x = random_tensor(shape, gen, 1000.0, 1001.0);  // mean^2 / variance ~ 1e7
  const Tensor gamma = ones({5}), beta = zeros({5});
  Tensor mean_expected, var_expected;
  ops::batch_norm_training(x.to(DType::Float64), gamma.to(DType::Float64), beta.to(DType::Float64), 1e-3, false,
                           mean_expected, var_expected);
  const std::vector<float> xv = values(x);
  const std::vector<body::Sum2> moments = column_reduce(body::ChannelMomentsTerm<float>{xv.data(), 5}, 648, 5);
  const std::vector<double> want = var_expected.to_vector<double>();
  for (std::size_t j = 0; j < 5; ++j)
    CHECK(body::channel_stats(moments[j], 648).biased_variance == doctest::Approx(want[j]).epsilon(1e-9));
}

TEST_CASE("folded batch norm, channel affine, moving statistics and the fused inference blocks") {
  PETAL_BOTH_GEOMETRIES()
  Generator gen(75);
  const std::int64_t c = 6;
  const Tensor gamma = random_tensor({c}, gen, 0.5, 2.0), beta = random_tensor({c}, gen);
  const Tensor mean = random_tensor({c}, gen), var = random_tensor({c}, gen, 0.1, 2.0);
  const ops::FoldedBatchNorm folded = ops::fold_batch_norm(gamma, beta, mean, var, 1e-3);
  const std::vector<float> gv = values(gamma), bv = values(beta), mv = values(mean), vv = values(var);
  std::vector<float> scale(static_cast<std::size_t>(c)), shift(static_cast<std::size_t>(c));
  for (std::size_t j = 0; j < std::size_t(c); ++j) {
    const body::FoldedChannel f = body::fold_channel(gv[j], bv[j], mv[j], vv[j], 1e-3);
    scale[j] = float(f.scale), shift[j] = float(f.shift);
  }
  check_close(from_vector(scale), values(folded.scale), 1e-6, "scale");
  check_close(from_vector(shift), values(folded.shift), 1e-6, "shift");

  const Tensor x = random_tensor({2, 3, 5, c}, gen, -3.0, 8.0);
  for (bool relu6 : {false, true}) {
    const Tensor expected = ops::channel_affine(x, folded.scale, folded.shift, relu6);
    const std::vector<float> xv = values(x), sv = values(folded.scale), tv = values(folded.shift);
    std::vector<float> y(xv.size());
    for (std::size_t i = 0; i < xv.size(); ++i) y[i] = body::channel_affine_element(xv[i], sv[i % 6], tv[i % 6], relu6);
    check_close(from_vector(y, x.shape()), values(expected), 1e-6, "channel_affine");
  }

  Tensor moving_mean = mean.clone(), moving_var = var.clone();
  const Tensor batch_mean = random_tensor({c}, gen), batch_var = random_tensor({c}, gen, 0.1, 1.0);
  ops::update_moving_statistics(moving_mean, moving_var, batch_mean, batch_var, 10, 0.9);
  const std::vector<float> bmv = values(batch_mean), bvv = values(batch_var);
  std::vector<float> mm(static_cast<std::size_t>(c)), mvar(static_cast<std::size_t>(c));
  for (std::size_t j = 0; j < std::size_t(c); ++j) {
    mm[j] = float(body::moving_average(mv[j], bmv[j], 1.0, 0.9));
    mvar[j] = float(body::moving_average(vv[j], bvv[j], body::unbiased_factor(10), 0.9));
  }
  check_close(moving_mean, mm, 1e-6, "moving mean");
  check_close(moving_var, mvar, 1e-6, "moving variance (unbiased)");
  CHECK(body::unbiased_factor(1) == 1.0);

  // conv + folded BN + ReLU6: the kernel scaled per output channel, the bias folded, then the conv epilogue.
  const Tensor cx = random_tensor({1, 7, 6, 4}, gen), kernel = random_tensor({3, 3, 4, c}, gen);
  const Tensor cbias = random_tensor({c}, gen);
  const ops::Conv2dWindow win = ops::conv2d_window(7, 6, 3, 3, 2, 2, ops::ConvPadding::Same, "t");
  const cpu::ConvGeometry g = geometry(cx.shape(), 3, 3, c, win);
  const Tensor expected = ops::conv2d_bn_relu6_inference(cx, kernel, cbias, folded, win, true);
  std::vector<float> wv = values(kernel), fb = values(cbias);
  const std::vector<float> sv = values(folded.scale), tv = values(folded.shift), xv = values(cx);
  for (std::size_t i = 0; i < wv.size(); ++i) wv[i] *= sv[i % std::size_t(c)];
  for (std::size_t j = 0; j < std::size_t(c); ++j) fb[j] = fb[j] * sv[j] + tv[j];
  std::vector<float> y(static_cast<std::size_t>(expected.numel()));
  for (std::int64_t o = 0; o < expected.numel(); ++o)
    y[std::size_t(o)] = body::conv_epilogue(on_geometry(g, [&](const auto& gg) { return body::conv2d_direct_element(xv.data(), wv.data(), gg, o); }), fb.data(), o % c, true);
  check_close(from_vector(y, expected.shape()), values(expected), 1e-5, "conv2d_bn_relu6_inference");
}

TEST_CASE("pooling and padding bodies match the CPU ops") {
  PETAL_BOTH_GEOMETRIES()
  Generator gen(76);
  struct PoolCase {
    Shape x;
    std::int64_t pool, stride;
    ops::ConvPadding padding;
  };
  const std::vector<PoolCase> cases = {
      {{2, 7, 5, 3}, 3, 2, ops::ConvPadding::Same}, {{1, 8, 8, 4}, 2, 2, ops::ConvPadding::Valid},
      {{1, 8, 8, 2}, 3, 2, ops::ConvPadding::Same}, {{2, 5, 6, 5}, 3, 1, ops::ConvPadding::Same},
      {{1, 9, 7, 3}, 2, 1, ops::ConvPadding::Valid}, {{3, 4, 4, 1}, 4, 1, ops::ConvPadding::Same},
  };
  for (const PoolCase& c : cases) {
    const ops::Conv2dWindow win =
        ops::conv2d_window(c.x[1], c.x[2], c.pool, c.pool, c.stride, c.stride, c.padding, "t");
    // Rounded to quarters so equal values occur and "first maximum" matters.
    Tensor x = random_tensor(c.x, gen, -2.0, 2.0);
    std::vector<float> xv = values(x);
    for (float& v : xv) v = std::round(v * 4.0f) / 4.0f;
    x = from_vector(xv, c.x);
    const cpu::ConvGeometry g = geometry(c.x, c.pool, c.pool, c.x[3], win);
    const std::string what = shape_str(c.x) + " pool " + std::to_string(c.pool) + " s" + std::to_string(c.stride);

    const Tensor avg = ops::average_pool2d(x, c.pool, c.pool, win), mx = ops::max_pool2d(x, c.pool, c.pool, win);
    std::vector<float> a(std::size_t(avg.numel())), m(std::size_t(mx.numel()));
    for (std::int64_t o = 0; o < avg.numel(); ++o) {
      a[std::size_t(o)] = on_geometry(g, [&](const auto& gg) { return body::avg_pool_output_element(xv.data(), gg, o); });
      m[std::size_t(o)] = on_geometry(g, [&](const auto& gg) { return body::max_pool_output_element(xv.data(), gg, o); });
    }
    check_close(from_vector(a, avg.shape()), values(avg), 1e-6, what + " average");
    check_close(from_vector(m, mx.shape()), values(mx), 0.0, what + " max");

    const Tensor dy = random_tensor(avg.shape(), gen);
    const std::vector<float> dyv = values(dy);
    const Tensor davg = ops::average_pool2d_backward(dy, x.shape(), c.pool, c.pool, win);
    const Tensor dmax = ops::max_pool2d_backward(dy, x, c.pool, c.pool, win);
    std::vector<float> da(xv.size()), dm(xv.size());
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      da[std::size_t(i)] = on_geometry(g, [&](const auto& gg) { return body::avg_pool_input_grad_element(dyv.data(), gg, i); });
      dm[std::size_t(i)] = on_geometry(g, [&](const auto& gg) { return body::max_pool_input_grad_element(dyv.data(), xv.data(), gg, i); });
    }
    check_close(from_vector(da, x.shape()), values(davg), 1e-6, what + " average gradient");
    check_close(from_vector(dm, x.shape()), values(dmax), 1e-6, what + " max gradient");
  }

  const Tensor x = random_tensor({2, 3, 4, 5}, gen);
  const std::vector<float> xv = values(x);
  const Tensor padded = ops::zero_pad2d(x, 1, 2, 0, 3);
  std::vector<float> p(std::size_t(padded.numel()));
  for (std::int64_t o = 0; o < padded.numel(); ++o) {
    const std::int64_t src = body::zero_pad_source<std::int64_t>(3, 4, 5, 6, 7, 1, 0, o);
    p[std::size_t(o)] = src < 0 ? 0.0f : xv[std::size_t(src)];
  }
  check_close(from_vector(p, padded.shape()), values(padded), 0.0, "zero_pad2d");
  const Tensor grad = random_tensor(padded.shape(), gen);
  const std::vector<float> gv = values(grad);
  const Tensor cropped = ops::zero_pad2d_backward(grad, 1, 2, 0, 3);
  std::vector<float> cr(xv.size());
  for (std::int64_t i = 0; i < x.numel(); ++i) cr[std::size_t(i)] = gv[std::size_t(body::crop_source<std::int64_t>(3, 4, 5, 6, 7, 1, 0, i))];
  check_close(from_vector(cr, x.shape()), values(cropped), 0.0, "zero_pad2d_backward");

  const Tensor gap = ops::global_average_pool2d(x);
  std::vector<float> gp(std::size_t(gap.numel()));
  for (std::int64_t o = 0; o < gap.numel(); ++o) gp[std::size_t(o)] = body::global_average_element<float, std::int64_t>(xv.data(), 12, 5, o);
  check_close(from_vector(gp, gap.shape()), values(gap), 1e-6, "global_average_pool2d");
}
