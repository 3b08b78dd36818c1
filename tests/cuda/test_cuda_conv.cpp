// Every CUDA convolution-family op (kernels/cuda/conv) forward and backward
// against the CPU op on random shapes: odd sizes, stride 1 and 2 on even and
// odd inputs, TensorFlow's asymmetric "same" padding, "valid", batch 1,
// depthwise multipliers 1 and 2, the MobileNetV2 layer kinds scaled down,
// strided inputs, float32 and float64; the fixed-order reductions give the
// same bits on every run. Skipped (exit 77) without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/cuda/cuda_test_support.hpp"

using namespace petal;
using petal::test::kCuda;

namespace {

// Sums of up to a few hundred products: the GEMM and the CPU kernels round
// in different orders.
constexpr double kConvRtol = 1e-4, kConvAtol = 1e-4;

double rtol(DType d) { return d == DType::Float64 ? 1e-10 : kConvRtol; }
double atol(DType d) { return d == DType::Float64 ? 1e-10 : kConvAtol; }

Tensor gpu(const Tensor& t) { return t.defined() ? t.to(kCuda) : Tensor(); }

struct ConvCase {
  Shape x;  // [N, H, W, C]
  std::int64_t kh, kw, stride;
  ops::ConvPadding padding;
  std::int64_t out;  // Cout, or the depthwise multiplier
};

std::string name_of(const ConvCase& c, DType dtype) {
  return shape_str(c.x) + " k" + std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" +
         std::to_string(c.stride) + (c.padding == ops::ConvPadding::Same ? " same " : " valid ") + "out " +
         std::to_string(c.out) + " " + dtype_name(dtype);
}

const std::vector<ConvCase> kConvCases = {
    {{2, 7, 5, 3}, 3, 3, 1, ops::ConvPadding::Same, 4},
    {{2, 32, 32, 3}, 3, 3, 2, ops::ConvPadding::Same, 32},  // MobileNetV2 stem (direct kernel), even input
    {{2, 9, 7, 5}, 3, 3, 2, ops::ConvPadding::Same, 6},     // odd input, stride 2 (im2col)
    {{1, 6, 9, 8}, 3, 2, 2, ops::ConvPadding::Valid, 3},
    {{2, 12, 12, 16}, 1, 1, 1, ops::ConvPadding::Same, 96},  // 1x1 expand (GEMM, no copy)
    {{1, 7, 7, 96}, 1, 1, 1, ops::ConvPadding::Valid, 24},   // 1x1 project
    {{1, 6, 6, 12}, 1, 1, 2, ops::ConvPadding::Valid, 5},    // 1x1 stride 2 (im2col)
    {{3, 4, 6, 6}, 5, 3, 1, ops::ConvPadding::Same, 7},
};

const std::vector<ConvCase> kDepthwiseCases = {
    {{2, 7, 5, 3}, 3, 3, 1, ops::ConvPadding::Same, 1},
    {{2, 24, 24, 32}, 3, 3, 1, ops::ConvPadding::Same, 1},  // block 1 depthwise scaled down
    {{2, 24, 24, 96}, 3, 3, 2, ops::ConvPadding::Same, 1},  // block 2 stride 2, even input
    {{1, 9, 7, 5}, 3, 3, 2, ops::ConvPadding::Same, 2},     // odd input, multiplier 2
    {{1, 6, 9, 4}, 3, 2, 2, ops::ConvPadding::Valid, 3},
    {{3, 5, 5, 7}, 5, 5, 1, ops::ConvPadding::Same, 1},
};

ops::Conv2dWindow window_of(const ConvCase& c) {
  return ops::conv2d_window(c.x[1], c.x[2], c.kh, c.kw, c.stride, c.stride, c.padding, "test");
}

}  // namespace

TEST_CASE("conv2d forward (bias, relu6) and backward on CUDA match the CPU") {
  Generator gen(11);
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const ConvCase& c : kConvCases) {
      INFO(name_of(c, dtype));
      const ops::Conv2dWindow win = window_of(c);
      const Tensor x = test::random_tensor(c.x, gen, dtype);
      const Tensor w = test::random_tensor({c.kh, c.kw, c.x[3], c.out}, gen, dtype, -0.5, 0.5);
      const Tensor b = test::random_tensor({c.out}, gen, dtype, 0.0, 4.0);
      for (bool relu6 : {false, true})
        test::check_matches(ops::conv2d(gpu(x), gpu(w), gpu(b), win, relu6), ops::conv2d(x, w, b, win, relu6),
                            rtol(dtype), atol(dtype));
      test::check_matches(ops::conv2d(gpu(x), gpu(w), Tensor(), win), ops::conv2d(x, w, Tensor(), win), rtol(dtype),
                          atol(dtype));
      const Tensor y = ops::conv2d(x, w, Tensor(), win);
      const Tensor dy = test::random_tensor(y.shape(), gen, dtype);
      test::check_matches(ops::conv2d_backward_input(gpu(dy), gpu(w), x.shape(), win),
                          ops::conv2d_backward_input(dy, w, x.shape(), win), rtol(dtype), atol(dtype));
      Tensor db_cpu, db_gpu;
      const Tensor dw_cpu = ops::conv2d_backward_kernel(dy, x, w.shape(), win, &db_cpu);
      const Tensor dw_gpu = ops::conv2d_backward_kernel(gpu(dy), gpu(x), w.shape(), win, &db_gpu);
      test::check_matches(dw_gpu, dw_cpu, rtol(dtype), atol(dtype));
      test::check_matches(db_gpu, db_cpu, rtol(dtype), atol(dtype));
    }
}

TEST_CASE("conv2d im2col in several workspace chunks (a partial last one) matches the CPU") {
  // 64x64 outputs x K = 3*3*64: 14 images fill the 2^25-element workspace, so
  // 18 images run as chunks of 14 and 4.
  Generator gen(19);
  const Shape shape{18, 64, 64, 64};
  const ops::Conv2dWindow win = ops::conv2d_window(64, 64, 3, 3, 1, 1, ops::ConvPadding::Same, "test");
  const Tensor x = test::random_tensor(shape, gen);
  const Tensor w = test::random_tensor({3, 3, 64, 8}, gen, DType::Float32, -0.2, 0.2);
  const Tensor b = test::random_tensor({8}, gen);
  test::check_matches(ops::conv2d(gpu(x), gpu(w), gpu(b), win, true), ops::conv2d(x, w, b, win, true), kConvRtol,
                      kConvAtol);
  const Tensor dy = test::random_tensor({18, 64, 64, 8}, gen, DType::Float32, -0.1, 0.1);
  test::check_matches(ops::conv2d_backward_input(gpu(dy), gpu(w), shape, win),
                      ops::conv2d_backward_input(dy, w, shape, win), kConvRtol, kConvAtol);
  // Sums over 73728 pixels: float32 accumulation order matters more here.
  test::check_matches(ops::conv2d_backward_kernel(gpu(dy), gpu(x), w.shape(), win),
                      ops::conv2d_backward_kernel(dy, x, w.shape(), win), 1e-3, 1e-3);
}

TEST_CASE("conv2d on CUDA takes strided inputs") {
  Generator gen(12);
  const test::StridedPair x = test::strided_pair({2, 7, 6, 5}, gen);
  const Tensor w = test::random_tensor({3, 3, 5, 4}, gen);
  const ops::Conv2dWindow win = ops::conv2d_window(7, 6, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  test::check_matches(ops::conv2d(x.cuda, gpu(w), Tensor(), win), ops::conv2d(x.cpu, w, Tensor(), win), kConvRtol,
                      kConvAtol);
}

TEST_CASE("depthwise conv forward (bias, relu6) and backward on CUDA match the CPU") {
  Generator gen(13);
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const ConvCase& c : kDepthwiseCases) {
      INFO(name_of(c, dtype));
      const ops::Conv2dWindow win = window_of(c);
      const std::int64_t out_c = c.x[3] * c.out;
      const Tensor x = test::random_tensor(c.x, gen, dtype);
      const Tensor w = test::random_tensor({c.kh, c.kw, c.x[3], c.out}, gen, dtype);
      const Tensor b = test::random_tensor({out_c}, gen, dtype, 0.0, 4.0);
      for (bool relu6 : {false, true})
        test::check_matches(ops::depthwise_conv2d(gpu(x), gpu(w), gpu(b), win, relu6),
                            ops::depthwise_conv2d(x, w, b, win, relu6), rtol(dtype), atol(dtype));
      const Tensor y = ops::depthwise_conv2d(x, w, Tensor(), win);
      const Tensor dy = test::random_tensor(y.shape(), gen, dtype);
      test::check_matches(ops::depthwise_conv2d_backward_input(gpu(dy), gpu(w), x.shape(), win),
                          ops::depthwise_conv2d_backward_input(dy, w, x.shape(), win), rtol(dtype), atol(dtype));
      Tensor db_cpu, db_gpu;
      const Tensor dw_cpu = ops::depthwise_conv2d_backward_kernel(dy, x, w.shape(), win, &db_cpu);
      const Tensor dw_gpu = ops::depthwise_conv2d_backward_kernel(gpu(dy), gpu(x), w.shape(), win, &db_gpu);
      test::check_matches(dw_gpu, dw_cpu, rtol(dtype), atol(dtype));
      test::check_matches(db_gpu, db_cpu, rtol(dtype), atol(dtype));
    }
}

TEST_CASE("batch norm training, backward, fold, affine and moving statistics on CUDA match the CPU") {
  Generator gen(14);
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const Shape& shape : {Shape{2, 5, 3, 7}, Shape{1, 1, 1, 3}, Shape{4, 12, 12, 96}, Shape{300, 33}})
      for (bool relu6 : {false, true}) {
        INFO(shape_str(shape), " ", dtype_name(dtype), relu6 ? " relu6" : "");
        const std::int64_t c = shape.back();
        const Tensor x = test::random_tensor(shape, gen, dtype, -2.0, 3.0);
        const Tensor gamma = test::random_tensor({c}, gen, dtype, 0.5, 2.0);
        const Tensor beta = test::random_tensor({c}, gen, dtype, 0.0, 4.0);
        Tensor mean_cpu, var_cpu, mean_gpu, var_gpu;
        const Tensor y_cpu = ops::batch_norm_training(x, gamma, beta, 1e-3, relu6, mean_cpu, var_cpu);
        const Tensor y_gpu = ops::batch_norm_training(gpu(x), gpu(gamma), gpu(beta), 1e-3, relu6, mean_gpu, var_gpu);
        test::check_matches(y_gpu, y_cpu, rtol(dtype), atol(dtype));
        test::check_matches(mean_gpu, mean_cpu, rtol(dtype), atol(dtype));
        test::check_matches(var_gpu, var_cpu, rtol(dtype), atol(dtype));
        // The same bits again: fixed-order reductions.
        Tensor mean_again, var_again;
        const Tensor y_again = ops::batch_norm_training(gpu(x), gpu(gamma), gpu(beta), 1e-3, relu6, mean_again, var_again);
        CHECK(y_again.to_vector<double>() == y_gpu.to_vector<double>());
        CHECK(var_again.to_vector<double>() == var_gpu.to_vector<double>());

        const Tensor dy = test::random_tensor(shape, gen, dtype);
        const ops::BatchNormGrads g_cpu = ops::batch_norm_backward(dy, x, gamma, beta, mean_cpu, var_cpu, 1e-3, relu6);
        const ops::BatchNormGrads g_gpu = ops::batch_norm_backward(gpu(dy), gpu(x), gpu(gamma), gpu(beta), gpu(mean_cpu),
                                                                   gpu(var_cpu), 1e-3, relu6);
        test::check_matches(g_gpu.x, g_cpu.x, rtol(dtype), atol(dtype));
        test::check_matches(g_gpu.gamma, g_cpu.gamma, rtol(dtype), atol(dtype));
        test::check_matches(g_gpu.beta, g_cpu.beta, rtol(dtype), atol(dtype));

        const Tensor mm = test::random_tensor({c}, gen, dtype), mv = test::random_tensor({c}, gen, dtype, 0.1, 2.0);
        const ops::FoldedBatchNorm f_cpu = ops::fold_batch_norm(gamma, beta, mm, mv, 1e-3);
        const ops::FoldedBatchNorm f_gpu = ops::fold_batch_norm(gpu(gamma), gpu(beta), gpu(mm), gpu(mv), 1e-3);
        test::check_matches(f_gpu.scale, f_cpu.scale, rtol(dtype), atol(dtype));
        test::check_matches(f_gpu.shift, f_cpu.shift, rtol(dtype), atol(dtype));
        test::check_matches(ops::channel_affine(gpu(x), f_gpu.scale, f_gpu.shift, relu6),
                            ops::channel_affine(x, f_cpu.scale, f_cpu.shift, relu6), rtol(dtype), atol(dtype));

        Tensor mm_cpu = mm.clone(), mv_cpu = mv.clone(), mm_gpu = gpu(mm), mv_gpu = gpu(mv);
        ops::update_moving_statistics(mm_cpu, mv_cpu, mean_cpu, var_cpu, x.numel() / c, 0.99);
        ops::update_moving_statistics(mm_gpu, mv_gpu, mean_gpu, var_gpu, x.numel() / c, 0.99);
        test::check_matches(mm_gpu, mm_cpu, rtol(dtype), atol(dtype));
        test::check_matches(mv_gpu, mv_cpu, rtol(dtype), atol(dtype));
      }
}

TEST_CASE("fused conv/depthwise + BN (+relu6) inference and training on CUDA match the CPU") {
  Generator gen(15);
  for (const ConvCase& c : {kConvCases[1], kConvCases[4], kDepthwiseCases[2]}) {
    const bool depthwise = c.x[3] == 96 && c.kh == 3;
    INFO(name_of(c, DType::Float32), depthwise ? " depthwise" : "");
    const ops::Conv2dWindow win = window_of(c);
    const std::int64_t out_c = depthwise ? c.x[3] * c.out : c.out;
    const Tensor x = test::random_tensor(c.x, gen);
    const Tensor w = test::random_tensor({c.kh, c.kw, c.x[3], c.out}, gen, DType::Float32, -0.5, 0.5);
    const Tensor b = test::random_tensor({out_c}, gen);
    const Tensor gamma = test::random_tensor({out_c}, gen, DType::Float32, 0.5, 2.0);
    const Tensor beta = test::random_tensor({out_c}, gen, DType::Float32, 0.0, 4.0);
    const Tensor mm = test::random_tensor({out_c}, gen), mv = test::random_tensor({out_c}, gen, DType::Float32, 0.1, 2.0);
    const ops::FoldedBatchNorm bn = ops::fold_batch_norm(gamma, beta, mm, mv, 1e-3);
    const ops::FoldedBatchNorm bn_gpu{gpu(bn.scale), gpu(bn.shift)};
    if (depthwise) {
      test::check_matches(ops::depthwise_bn_relu6_inference(gpu(x), gpu(w), gpu(b), bn_gpu, win),
                          ops::depthwise_bn_relu6_inference(x, w, b, bn, win), kConvRtol, kConvAtol);
    } else {
      test::check_matches(ops::conv2d_bn_relu6_inference(gpu(x), gpu(w), gpu(b), bn_gpu, win),
                          ops::conv2d_bn_relu6_inference(x, w, b, bn, win), kConvRtol, kConvAtol);
    }
    const ops::ConvBatchNormResult r_cpu =
        depthwise ? ops::depthwise_conv2d_batch_norm_training(x, w, win, gamma, beta, 1e-3, true)
                  : ops::conv2d_batch_norm_training(x, w, win, gamma, beta, 1e-3, true);
    const ops::ConvBatchNormResult r_gpu =
        depthwise ? ops::depthwise_conv2d_batch_norm_training(gpu(x), gpu(w), win, gpu(gamma), gpu(beta), 1e-3, true)
                  : ops::conv2d_batch_norm_training(gpu(x), gpu(w), win, gpu(gamma), gpu(beta), 1e-3, true);
    test::check_matches(r_gpu.conv_out, r_cpu.conv_out, kConvRtol, kConvAtol);
    test::check_matches(r_gpu.mean, r_cpu.mean, kConvRtol, kConvAtol);
    test::check_matches(r_gpu.biased_variance, r_cpu.biased_variance, kConvRtol, kConvAtol);
    test::check_matches(r_gpu.y, r_cpu.y, kConvRtol, kConvAtol);
  }
}

TEST_CASE("padding and pooling forward and backward on CUDA match the CPU") {
  Generator gen(16);
  struct PoolCase {
    Shape x;
    std::int64_t pool, stride;
    ops::ConvPadding padding;
  };
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const PoolCase& c : {PoolCase{{2, 7, 5, 3}, 3, 2, ops::ConvPadding::Same},
                              PoolCase{{1, 8, 8, 4}, 2, 2, ops::ConvPadding::Valid},
                              PoolCase{{1, 8, 8, 2}, 3, 2, ops::ConvPadding::Same},
                              PoolCase{{2, 5, 6, 5}, 3, 1, ops::ConvPadding::Same}}) {
      INFO(shape_str(c.x), " pool ", c.pool, " stride ", c.stride, " ", dtype_name(dtype));
      const ops::Conv2dWindow win = ops::conv2d_window(c.x[1], c.x[2], c.pool, c.pool, c.stride, c.stride, c.padding, "t");
      // Quarter steps, so windows hold ties and "first maximum" matters.
      std::vector<double> values = test::random_tensor(c.x, gen, dtype).to_vector<double>();
      for (double& v : values) v = std::round(v * 4.0) / 4.0;
      const Tensor x = from_vector(values, c.x).to(dtype);
      const Tensor avg = ops::average_pool2d(x, c.pool, c.pool, win);
      test::check_matches(ops::average_pool2d(gpu(x), c.pool, c.pool, win), avg, rtol(dtype), atol(dtype));
      test::check_matches(ops::max_pool2d(gpu(x), c.pool, c.pool, win), ops::max_pool2d(x, c.pool, c.pool, win),
                          0.0, 0.0);
      const Tensor dy = test::random_tensor(avg.shape(), gen, dtype);
      test::check_matches(ops::average_pool2d_backward(gpu(dy), x.shape(), c.pool, c.pool, win),
                          ops::average_pool2d_backward(dy, x.shape(), c.pool, c.pool, win), rtol(dtype), atol(dtype));
      test::check_matches(ops::max_pool2d_backward(gpu(dy), gpu(x), c.pool, c.pool, win),
                          ops::max_pool2d_backward(dy, x, c.pool, c.pool, win), rtol(dtype), atol(dtype));

      const Tensor padded = ops::zero_pad2d(x, 1, 2, 0, 3);
      test::check_matches(ops::zero_pad2d(gpu(x), 1, 2, 0, 3), padded, 0.0, 0.0);
      const Tensor pg = test::random_tensor(padded.shape(), gen, dtype);
      test::check_matches(ops::zero_pad2d_backward(gpu(pg), 1, 2, 0, 3), ops::zero_pad2d_backward(pg, 1, 2, 0, 3),
                          0.0, 0.0);
      const Tensor gap = ops::global_average_pool2d(x);
      test::check_matches(ops::global_average_pool2d(gpu(x)), gap, rtol(dtype), atol(dtype));
      const Tensor gg = test::random_tensor(gap.shape(), gen, dtype);
      test::check_matches(ops::global_average_pool2d_backward(gpu(gg), x.shape()),
                          ops::global_average_pool2d_backward(gg, x.shape()), rtol(dtype), atol(dtype));
    }
}

TEST_CASE("conv2d GEMM paths with TF32 tensor cores stay within TF32 rounding of the CPU") {
  Generator gen(18);
  cuda::set_tf32_enabled(true);
  for (const ConvCase& c : {kConvCases[2], kConvCases[4]}) {
    INFO(name_of(c, DType::Float32), " tf32");
    const ops::Conv2dWindow win = window_of(c);
    const Tensor x = test::random_tensor(c.x, gen);
    const Tensor w = test::random_tensor({c.kh, c.kw, c.x[3], c.out}, gen, DType::Float32, -0.5, 0.5);
    // TF32 keeps 10 mantissa bits: relative error about 1e-3 per product.
    test::check_matches(ops::conv2d(gpu(x), gpu(w), Tensor(), win), ops::conv2d(x, w, Tensor(), win), 1e-2, 2e-2);
    const Tensor dy = test::random_tensor(ops::conv2d(x, w, Tensor(), win).shape(), gen);
    test::check_matches(ops::conv2d_backward_kernel(gpu(dy), gpu(x), w.shape(), win),
                        ops::conv2d_backward_kernel(dy, x, w.shape(), win), 1e-2, 5e-2);
  }
  cuda::set_tf32_enabled(false);
  cuda::synchronize();  // an asynchronous kernel fault would surface here
}

TEST_CASE("CUDA conv ops reject operands on different devices, naming the op") {
  Generator gen(17);
  const Tensor x = test::random_tensor({1, 5, 5, 3}, gen), w = test::random_tensor({3, 3, 3, 4}, gen);
  const ops::Conv2dWindow win = ops::conv2d_window(5, 5, 3, 3, 1, 1, ops::ConvPadding::Same, "test");
  try {
    ops::conv2d(gpu(x), w, Tensor(), win);
    FAIL("no error");
  } catch (const DeviceError& e) {
    CHECK(std::string(e.what()).find("conv2d") != std::string::npos);
    CHECK(std::string(e.what()).find("different devices") != std::string::npos);
  }
}
