// ZeroPadding2D, GlobalAveragePooling2D, AveragePooling2D (padding not
// counted) and MaxPooling2D against hand-computed examples and their
// gradients; the dropout mask's rate and scale.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/ops.hpp"
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
