// RandomFlip and RandomContrast: identity in inference, Keras's transforms
// per image in training mode (checked against plain loops), seeds, and use
// in Sequential and functional models.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "layer_check.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
using namespace petal::nn::testing;

namespace {

constexpr int N = 16, H = 3, W = 4, C = 2;

float at(const std::vector<float>& v, int n, int i, int j, int c) {
  return v[static_cast<std::size_t>(((n * H + i) * W + j) * C + c)];
}

// Whether image n of y is image n of x flipped as asked.
bool is_flip(const std::vector<float>& x, const std::vector<float>& y, int n, bool h, bool v) {
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j)
      for (int c = 0; c < C; ++c)
        if (at(y, n, i, j, c) != at(x, n, v ? H - 1 - i : i, h ? W - 1 - j : j, c)) return false;
  return true;
}

}  // namespace

TEST_CASE("RandomFlip: names and modes; identity in inference") {
  reset_layer_names();
  RandomFlip flip;
  CHECK(flip.name() == "random_flip");
  CHECK(flip.horizontal());
  CHECK(flip.vertical());
  CHECK_FALSE(RandomFlip("horizontal").vertical());
  CHECK_FALSE(RandomFlip("vertical").horizontal());
  CHECK_THROWS_AS(RandomFlip("diagonal"), ValueError);
  const Tensor x = random_tensor({N, H, W, C}, 1);
  CHECK(values(flip(ag::Variable(x))) == x.to_vector<float>());
  RandomFlip flat;
  CHECK_THROWS_AS(flat.build(Shape{3, 4}), ShapeError);
}

TEST_CASE("RandomFlip in training: each image kept or flipped (both axes at once in horizontal_and_vertical), both happen, seeds repeat") {
  const Tensor x = random_tensor({N, H, W, C}, 2);
  const std::vector<float> xs = x.to_vector<float>();
  for (const char* mode : {"horizontal", "vertical", "horizontal_and_vertical"}) {
    CAPTURE(mode);
    RandomFlip flip(mode, 7);
    const std::vector<float> y = values(flip(ag::Variable(x), true));
    const bool may_h = flip.horizontal(), may_v = flip.vertical();
    int flipped = 0, kept = 0;
    for (int n = 0; n < N; ++n) {
      bool ok = false;
      // Kept, or flipped along every axis of the mode (both at once with
      // horizontal_and_vertical, one draw per image as Keras 3).
      if (is_flip(xs, y, n, false, false)) {
        ok = true;
        ++kept;
      } else if (is_flip(xs, y, n, may_h, may_v)) {
        ok = true;
        ++flipped;
      }
      CHECK(ok);
    }
    CHECK(flipped > 0);
    CHECK(kept > 0);
    RandomFlip again(mode, 7);
    CHECK(values(again(ag::Variable(x), true)) == y);
  }
  // The gradient goes back through the flip to the right pixels.
  RandomFlip flip("horizontal_and_vertical", 3);
  flip.build(Shape{H, W, C});
  ag::Variable input(x.to(DType::Float64), true);
  ag::Variable y = flip(input, true);
  const Tensor r = random_tensor({N, H, W, C}, 4, DType::Float64);
  ag::sum(ag::mul(y, ag::Variable(r))).backward();
  // sum(y * r) = sum(x * flip^-1(r)): each input pixel's gradient is r at the pixel it moved to.
  const std::vector<double> ys = y.data().to_vector<double>(), xs64 = input.data().to_vector<double>();
  const std::vector<double> g = input.grad().to_vector<double>(), rs = r.to_vector<double>();
  double lhs = 0.0, rhs = 0.0;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    lhs += ys[i] * rs[i];
    rhs += xs64[i] * g[i];
  }
  CHECK(lhs == doctest::Approx(rhs));
}

TEST_CASE("RandomContrast: identity in inference; per-image factor in range, per-channel means, clipping") {
  reset_layer_names();
  RandomContrast contrast(0.5, 11);
  CHECK(contrast.name() == "random_contrast");
  CHECK(contrast.lower() == 0.5);
  CHECK_THROWS_AS(RandomContrast(1.5), ValueError);
  RandomContrast pair(std::pair{0.2, 0.7});
  CHECK(pair.lower() == 0.2);
  CHECK(pair.upper() == 0.7);
  const Tensor x = random_tensor({N, H, W, C}, 5, DType::Float32, 100.0, 150.0);
  const std::vector<float> xs = x.to_vector<float>();
  CHECK(values(contrast(ag::Variable(x))) == xs);

  const std::vector<float> y = values(contrast(ag::Variable(x), true));
  double smallest = 2.0, largest = 0.0;
  for (int n = 0; n < N; ++n) {
    double mean[C] = {0, 0};
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j)
        for (int c = 0; c < C; ++c) mean[c] += at(xs, n, i, j, c) / (H * W);
    // The factor from the first pixel, then every pixel must agree with it.
    const double f = (at(y, n, 0, 0, 0) - mean[0]) / (at(xs, n, 0, 0, 0) - mean[0]);
    CHECK(f >= 0.5 - 1e-3);
    CHECK(f <= 1.5 + 1e-3);
    smallest = std::min(smallest, f);
    largest = std::max(largest, f);
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j)
        for (int c = 0; c < C; ++c)
          CHECK(at(y, n, i, j, c) == doctest::Approx((at(xs, n, i, j, c) - mean[c]) * f + mean[c]).epsilon(1e-4));
  }
  CHECK(smallest < 0.9);  // the factors differ between images
  CHECK(largest > 1.1);
  RandomContrast same_seed(0.5, 11);
  CHECK(values(same_seed(ag::Variable(x), true)) == y);

  // Values beyond value_range are clipped to it.
  RandomContrast clip(0.2, 1);
  CHECK(clip.upper() == 0.2);
  const std::vector<float> z = values(clip(ag::Variable(full({1, H, W, C}, 300.0)), true));
  for (float v : z) CHECK(v == 255.0f);
}

TEST_CASE("augmentation layers in Sequential (fit mode) and functional models") {
  auto seq = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{H, W, C}), std::make_shared<RandomFlip>("horizontal", 1),
      std::make_shared<RandomContrast>(0.1, 2), std::make_shared<Rescaling>(1.0 / 255), std::make_shared<Flatten>(),
      std::make_shared<Dense>(2)});
  CHECK(seq->output_shape() == Shape{2});
  const Tensor x = random_tensor({4, H, W, C}, 6, DType::Float32, 0.0, 255.0);
  ag::Variable out = (*seq)(ag::Variable(x), true);
  ag::sum(out).backward();
  CHECK(seq->trainable_parameters().front().has_grad());
  // Inference: deterministic.
  CHECK(values((*seq)(ag::Variable(x))) == values((*seq)(ag::Variable(x))));

  auto input = Input({H, W, C});
  auto y = layer<RandomContrast>(0.3)(layer<RandomFlip>()(input));
  auto model = std::make_shared<Model>(input, y);
  CHECK(model->output_shape() == Shape{H, W, C});
  CHECK(values((*model)(ag::Variable(x))) == x.to_vector<float>());
}
