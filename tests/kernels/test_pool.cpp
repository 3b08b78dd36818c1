// ZeroPadding2D, GlobalAveragePooling2D, AveragePooling2D (padding not
// counted) and MaxPooling2D against hand-computed examples and their
// gradients; the float32 SIMD kernels against the reference loops on random
// shapes under every ISA with 1 and 2 threads; the dropout mask's rate and scale.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/cpu/conv/reference_conv.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/test_conv_support.hpp"

using namespace petal;
using namespace petal::conv_test;

namespace {
Tensor grid_4x4() {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[static_cast<std::size_t>(i)] = float(i);
  return from_vector(v, {1, 4, 4, 1});
}
}  // namespace

TEST_CASE("zero_pad2d pads and its backward crops") {
  const Tensor x = from_vector<float>({1, 2, 3, 4}, {1, 2, 2, 1});
  const Tensor y = ops::zero_pad2d(x, 1, 0, 0, 2);  // top 1, right 2
  CHECK(y.shape() == Shape{1, 3, 4, 1});
  CHECK(y.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0});
  CHECK(ops::zero_pad2d_backward(y, 1, 0, 0, 2).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_AS(ops::zero_pad2d(x, -1, 0, 0, 0), ValueError);
}

TEST_CASE("global average pooling and its gradient") {
  const Tensor x = from_vector<float>({1, 10, 2, 20, 3, 30, 6, 60}, {1, 2, 2, 2});
  const Tensor y = ops::global_average_pool2d(x);
  CHECK(y.shape() == Shape{1, 2});
  CHECK(y.to_vector<float>() == std::vector<float>{3, 30});
  const Tensor g = ops::global_average_pool2d_backward(from_vector<float>({4, 8}, {1, 2}), x.shape());
  CHECK(g.to_vector<float>() == std::vector<float>{1, 2, 1, 2, 1, 2, 1, 2});
}

TEST_CASE("average pooling 'same' averages only the in-bounds elements") {
  const Tensor x = grid_4x4();
  const ops::Conv2dWindow win = ops::conv2d_window(4, 4, 3, 3, 2, 2, ops::ConvPadding::Same, "test");
  const Tensor y = ops::average_pool2d(x, 3, 3, win);
  // Windows rows {0,1,2}/{2,3} x columns {0,1,2}/{2,3} (bottom/right padding not counted).
  const std::vector<float> expected = {(0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9.0f, (2 + 3 + 6 + 7 + 10 + 11) / 6.0f,
                                       (8 + 9 + 10 + 12 + 13 + 14) / 6.0f, (10 + 11 + 14 + 15) / 4.0f};
  const std::vector<float> got = y.to_vector<float>();
  for (std::size_t i = 0; i < 4; ++i) CHECK(got[i] == doctest::Approx(expected[i]));
  // Gradient of the last window (4 elements) is 1/4 each; element 10 is in all four windows.
  const Tensor dx = ops::average_pool2d_backward(ones({1, 2, 2, 1}), x.shape(), 3, 3, win);
  const std::vector<float> d = dx.to_vector<float>();
  CHECK(d[15] == doctest::Approx(0.25));
  CHECK(d[10] == doctest::Approx(1.0 / 9 + 1.0 / 6 + 1.0 / 6 + 1.0 / 4));
  CHECK(d[0] == doctest::Approx(1.0 / 9));
}

TEST_CASE("max pooling valid and same, gradient to the first maximum") {
  const Tensor x = grid_4x4();
  const Tensor y = ops::max_pool2d(x, 2, 2, ops::conv2d_window(4, 4, 2, 2, 2, 2, ops::ConvPadding::Valid, "t"));
  CHECK(y.to_vector<float>() == std::vector<float>{5, 7, 13, 15});
  const ops::Conv2dWindow same = ops::conv2d_window(4, 4, 3, 3, 2, 2, ops::ConvPadding::Same, "t");
  CHECK(ops::max_pool2d(ops::add_scalar(x, -100.0), 3, 3, same).to_vector<float>() == std::vector<float>{-90, -89, -86, -85});
  // Ties: all equal, the gradient goes to the window's first element only.
  const Tensor flat = ones({1, 2, 2, 1});
  const Tensor dx = ops::max_pool2d_backward(from_vector<float>({3}, {1, 1, 1, 1}), flat, 2, 2,
                                             ops::conv2d_window(2, 2, 2, 2, 2, 2, ops::ConvPadding::Valid, "t"));
  CHECK(dx.to_vector<float>() == std::vector<float>{3, 0, 0, 0});
  CHECK_THROWS_AS(ops::max_pool2d(x, 5, 5, ops::Conv2dWindow{}), ShapeError);
}

namespace {

struct PoolCase {
  Shape input;
  std::int64_t pool_h, pool_w, stride_h, stride_w;
  ops::ConvPadding padding;
};

std::string describe(const PoolCase& pc) {
  return shape_str(pc.input) + " pool " + std::to_string(pc.pool_h) + "x" + std::to_string(pc.pool_w) + " stride " +
         std::to_string(pc.stride_h) + "x" + std::to_string(pc.stride_w) +
         (pc.padding == ops::ConvPadding::Same ? " same" : " valid");
}

// Odd sizes, ragged channel counts (5, 17, 37 leave a tail on every vector
// width), stride 2 on even and odd inputs, batch 1 and 3. The last is big
// enough that 2 threads really split its rows.
const std::vector<PoolCase> kPoolCases = {
    {{1, 7, 9, 5}, 3, 3, 2, 2, ops::ConvPadding::Same},    {{3, 8, 8, 17}, 3, 3, 2, 2, ops::ConvPadding::Same},
    {{3, 9, 7, 37}, 2, 2, 2, 2, ops::ConvPadding::Valid},  {{1, 8, 6, 17}, 2, 2, 2, 2, ops::ConvPadding::Valid},
    {{3, 5, 5, 16}, 3, 3, 1, 1, ops::ConvPadding::Same},   {{1, 11, 10, 37}, 3, 3, 2, 2, ops::ConvPadding::Valid},
    {{3, 7, 8, 5}, 2, 3, 1, 2, ops::ConvPadding::Same},    {{1, 6, 6, 1}, 4, 4, 3, 3, ops::ConvPadding::Same},
    {{3, 33, 35, 37}, 3, 3, 2, 2, ops::ConvPadding::Same},
    // A global pool of many channels: groups of four vectors, single vectors, a tail.
    {{2, 6, 6, 83}, 6, 6, 1, 1, ops::ConvPadding::Valid},
};

// Uniform values, or (ties) a few distinct levels so that most windows hold
// repeated maxima.
Tensor pool_input(const Shape& shape, Generator& gen, bool ties) {
  Tensor x = random_tensor(shape, gen, -2.0, 2.0);
  if (!ties) return x;
  std::vector<float> v = x.to_vector<float>();
  for (float& e : v) e = std::round(e);
  return from_vector(v, shape);
}

// Per ISA, the result of the first thread count seen; later ones must match bit for bit.
class SameForEveryThreadCount {
 public:
  void check(const std::string& what, const std::vector<float>& result) {
    const std::string key = std::string(cpu::isa_name(cpu::active_isa())) + " " + what;
    const auto [it, first] = seen_.emplace(key, result);
    if (!first) {
      INFO(key << ": differs between thread counts");
      CHECK(it->second == result);
    }
  }

 private:
  std::map<std::string, std::vector<float>> seen_;
};

}  // namespace

TEST_CASE("average pooling kernels match the reference loops under every ISA and thread count") {
  Generator gen(7);
  SameForEveryThreadCount deterministic;
  for (const PoolCase& pc : kPoolCases) {
    const ops::Conv2dWindow win = ops::conv2d_window(pc.input[1], pc.input[2], pc.pool_h, pc.pool_w, pc.stride_h,
                                                     pc.stride_w, pc.padding, "test");
    const cpu::ConvGeometry g = geometry(pc.input, pc.pool_h, pc.pool_w, pc.input[3], win);
    const Tensor x = pool_input(pc.input, gen, false);
    const Tensor dy = random_tensor({g.batch, g.out_h, g.out_w, g.out_c}, gen);
    std::vector<float> y_ref(static_cast<std::size_t>(dy.numel())), dx_ref(static_cast<std::size_t>(x.numel()));
    cpu::reference_avg_pool_forward(x.to_vector<float>().data(), y_ref.data(), g);
    cpu::reference_avg_pool_backward(dy.to_vector<float>().data(), dx_ref.data(), g);
    for_each_isa_and_threads([&](const std::string& how) {
      const std::string what = describe(pc) + " " + how;
      const Tensor y = ops::average_pool2d(x, pc.pool_h, pc.pool_w, win);
      REQUIRE(y.shape() == dy.shape());
      check_close(y, y_ref, 1e-6, "average_pool2d " + what);
      const Tensor dx = ops::average_pool2d_backward(dy, x.shape(), pc.pool_h, pc.pool_w, win);
      check_close(dx, dx_ref, 1e-6, "average_pool2d_backward " + what);
      deterministic.check(describe(pc) + " forward", y.to_vector<float>());
      deterministic.check(describe(pc) + " backward", dx.to_vector<float>());
    });
  }
}

TEST_CASE("max pooling kernels match the reference loops exactly, ties included") {
  Generator gen(8);
  SameForEveryThreadCount deterministic;
  for (const PoolCase& pc : kPoolCases) {
    for (bool ties : {false, true}) {
      const ops::Conv2dWindow win = ops::conv2d_window(pc.input[1], pc.input[2], pc.pool_h, pc.pool_w, pc.stride_h,
                                                       pc.stride_w, pc.padding, "test");
      const cpu::ConvGeometry g = geometry(pc.input, pc.pool_h, pc.pool_w, pc.input[3], win);
      const Tensor x = pool_input(pc.input, gen, ties);
      const Tensor dy = random_tensor({g.batch, g.out_h, g.out_w, g.out_c}, gen);
      std::vector<float> y_ref(static_cast<std::size_t>(dy.numel())), dx_ref(static_cast<std::size_t>(x.numel()));
      cpu::reference_max_pool_forward(x.to_vector<float>().data(), y_ref.data(), g);
      cpu::reference_max_pool_backward(dy.to_vector<float>().data(), x.to_vector<float>().data(), dx_ref.data(), g);
      const std::string name = describe(pc) + (ties ? " ties" : "");
      for_each_isa_and_threads([&](const std::string& how) {
        INFO(name << " " << how);
        const Tensor y = ops::max_pool2d(x, pc.pool_h, pc.pool_w, win);
        REQUIRE(y.shape() == dy.shape());
        CHECK(y.to_vector<float>() == y_ref);
        // Same winners and the same summation order as the reference scatter.
        const Tensor dx = ops::max_pool2d_backward(dy, x, pc.pool_h, pc.pool_w, win);
        CHECK(dx.to_vector<float>() == dx_ref);
        deterministic.check(name + " backward", dx.to_vector<float>());
      });
    }
  }
}

TEST_CASE("global average pooling kernels match the reference loops (MobileNetV2's 6x6x1280 included)") {
  Generator gen(9);
  SameForEveryThreadCount deterministic;
  for (const Shape& shape : {Shape{3, 6, 6, 1280}, Shape{1, 6, 6, 1280}, Shape{3, 7, 5, 37}, Shape{1, 1, 1, 17},
                             Shape{3, 3, 9, 5}}) {
    cpu::ConvGeometry g;
    g.batch = shape[0], g.in_h = shape[1], g.in_w = shape[2], g.in_c = g.out_c = shape[3];
    g.out_h = g.out_w = 1, g.kernel_h = shape[1], g.kernel_w = shape[2];
    const Tensor x = random_tensor(shape, gen, 0.0, 6.0);  // post-ReLU6 activations
    const Tensor dy = random_tensor({shape[0], shape[3]}, gen);
    std::vector<float> y_ref(static_cast<std::size_t>(dy.numel())), dx_ref(static_cast<std::size_t>(x.numel()));
    cpu::reference_avg_pool_forward(x.to_vector<float>().data(), y_ref.data(), g);
    cpu::reference_avg_pool_backward(dy.to_vector<float>().data(), dx_ref.data(), g);
    for_each_isa_and_threads([&](const std::string& how) {
      const std::string what = shape_str(shape) + " " + how;
      const Tensor y = ops::global_average_pool2d(x);
      REQUIRE(y.shape() == dy.shape());
      check_close(y, y_ref, 1e-6, "global_average_pool2d " + what);
      check_close(ops::global_average_pool2d_backward(dy, shape), dx_ref, 1e-6,
                  "global_average_pool2d_backward " + what);
      deterministic.check(shape_str(shape), y.to_vector<float>());
    });
  }
}

TEST_CASE("zero padding row copies in float32 and float64, with 1 and 2 threads") {
  Generator gen(10);
  const Tensor x = random_tensor({3, 5, 7, 17}, gen);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const Tensor xt = x.to(dtype);
    for_each_isa_and_threads([&](const std::string& how) {
      INFO(dtype_name(dtype) << " " << how);
      const Tensor y = ops::zero_pad2d(xt, 2, 1, 0, 3);
      REQUIRE(y.shape() == Shape{3, 8, 10, 17});
      CHECK(y.dtype() == dtype);
      // Interior equals x, everything else is zero.
      CHECK(y.slice(1, 2, 7).slice(2, 0, 7).contiguous().to(DType::Float32).to_vector<float>() == x.to_vector<float>());
      double padded_total = 0.0, input_total = 0.0;
      for (double v : y.to(DType::Float64).to_vector<double>()) padded_total += std::fabs(v);
      for (double v : xt.to(DType::Float64).to_vector<double>()) input_total += std::fabs(v);
      CHECK(padded_total == doctest::Approx(input_total));
      CHECK(ops::zero_pad2d_backward(y, 2, 1, 0, 3).to(DType::Float32).to_vector<float>() == x.to_vector<float>());
      // A strided (non-contiguous) input pads the same as its contiguous copy.
      const Tensor strided = xt.slice(2, 1, 6);
      CHECK(ops::zero_pad2d(strided, 1, 1, 1, 1).to(DType::Float32).to_vector<float>() ==
            ops::zero_pad2d(strided.contiguous(), 1, 1, 1, 1).to(DType::Float32).to_vector<float>());
    });
  }
}

TEST_CASE("pooling rejects padding that leaves a window with no input element") {
  const Tensor x = grid_4x4();
  ops::Conv2dWindow win;
  win.pad_top = 2;
  CHECK_THROWS_AS(ops::average_pool2d(x, 2, 2, win), ValueError);
  CHECK_THROWS_AS(ops::max_pool2d(x, 2, 2, win), ValueError);
  win.pad_top = 1;
  CHECK(ops::max_pool2d(x, 2, 2, win).shape() == Shape{1, 4, 3, 1});
}

TEST_CASE("dropout mask keeps 1 - rate of the elements, scaled by 1 / (1 - rate)") {
  Generator gen(41);
  const Tensor mask = ops::dropout_mask({100, 100}, 0.25, gen);
  const std::vector<float> m = mask.to_vector<float>();
  std::size_t kept = 0, other = 0;
  for (float v : m) {
    kept += v != 0.0f;
    other += v != 0.0f && std::fabs(v - 1.0f / 0.75f) > 1e-6f;
  }
  CHECK(other == 0);
  CHECK(double(kept) / double(m.size()) == doctest::Approx(0.75).epsilon(0.03));
  CHECK_THROWS_AS(ops::dropout_mask({2}, 1.0, gen), ValueError);
}
