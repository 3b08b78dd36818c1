// Reshaping layers (Reshape, Permute, RepeatVector, Rescaling, Cropping2D,
// UpSampling2D) and Resizing: Keras names and defaults, output shapes before
// data, values against plain index loops or Keras 3 outputs
// (data/keras_layer_refs.hpp), gradients, Sequential and functional models.
#include <doctest/doctest.h>

#include <memory>

#include "core/error.hpp"
#include "keras_check.hpp"
#include "layer_check.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
using namespace petal::nn::testing;

TEST_CASE("Keras names of the reshaping layers") {
  reset_layer_names();
  CHECK(Reshape({-1}).name() == "reshape");
  CHECK(Permute({2, 1}).name() == "permute");
  CHECK(RepeatVector(2).name() == "repeat_vector");
  CHECK(Rescaling(1.0 / 255).name() == "rescaling");
  CHECK(Cropping2D().name() == "cropping2d");
  CHECK(UpSampling2D().name() == "up_sampling2d");
  CHECK(UpSampling2D().size().h == 2);
  CHECK(UpSampling2D().size().w == 2);
}

TEST_CASE("Reshape: -1 inferred, C-order values, bad targets") {
  Reshape r({3, -1});
  r.build(Shape{2, 6});
  CHECK(r.output_shape() == Shape{3, 4});
  const Tensor x = random_tensor({2, 2, 6}, 1);
  ag::Variable y = r(ag::Variable(x));
  CHECK(y.shape() == Shape{2, 3, 4});
  CHECK(values(y) == x.to_vector<float>());
  CHECK_THROWS_AS(Reshape({-1, -1}), ValueError);
  CHECK_THROWS_AS(Reshape({0, 2}), ValueError);
  Reshape bad({5});
  CHECK_THROWS_AS(bad.build(Shape{2, 3}), ShapeError);
  Reshape bad_unknown({5, -1});
  CHECK_THROWS_AS(bad_unknown.build(Shape{2, 3}), ShapeError);
  Reshape g({6, 2});
  check_layer_gradients(g, random_tensor({2, 3, 4}, 2, DType::Float64));
}

TEST_CASE("Permute: 1-based dims against a plain loop") {
  Permute p({3, 1, 2});
  p.build(Shape{2, 3, 4});
  CHECK(p.output_shape() == Shape{4, 2, 3});
  const Tensor x = random_tensor({2, 2, 3, 4}, 3);
  const std::vector<float> xs = x.to_vector<float>();
  const std::vector<float> y = values(p(ag::Variable(x)));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 4; ++c)
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 3; ++b)
          CHECK(y[static_cast<std::size_t>(((n * 4 + c) * 2 + a) * 3 + b)] ==
                xs[static_cast<std::size_t>(((n * 2 + a) * 3 + b) * 4 + c)]);
  CHECK_THROWS_AS(Permute({0, 1}), ValueError);
  CHECK_THROWS_AS(Permute({1, 1}), ValueError);
  Permute wrong_rank({2, 1});
  CHECK_THROWS_AS(wrong_rank.build(Shape{2, 3, 4}), ShapeError);
  check_layer_gradients(p, random_tensor({2, 2, 3, 4}, 4, DType::Float64));
}

TEST_CASE("RepeatVector: [N, F] -> [N, n, F]") {
  RepeatVector r(3);
  const Tensor x = random_tensor({2, 4}, 5);
  const std::vector<float> xs = x.to_vector<float>();
  ag::Variable y = r(ag::Variable(x));
  CHECK(y.shape() == Shape{2, 3, 4});
  const std::vector<float> ys = values(y);
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 3; ++k)
      for (int f = 0; f < 4; ++f) CHECK(ys[static_cast<std::size_t>((n * 3 + k) * 4 + f)] == xs[static_cast<std::size_t>(n * 4 + f)]);
  RepeatVector bad(2);
  CHECK_THROWS_AS(bad.build(Shape{2, 3}), ShapeError);
  CHECK_THROWS_AS(RepeatVector(0), ValueError);
  check_layer_gradients(r, random_tensor({2, 4}, 6, DType::Float64));
}

TEST_CASE("Rescaling: x * scale + offset") {
  Rescaling r(1.0 / 127.5, -1.0);
  const std::vector<float> y = values(r(ag::Variable(from_vector<float>({0.0f, 127.5f, 255.0f}, {1, 3}))));
  CHECK(y[0] == doctest::Approx(-1.0));
  CHECK(y[1] == doctest::Approx(0.0));
  CHECK(y[2] == doctest::Approx(1.0));
  CHECK(Rescaling(2.0).offset() == 0.0);
  check_layer_gradients(r, random_tensor({2, 3}, 7, DType::Float64));
}

TEST_CASE("Cropping2D: ((top, bottom), (left, right)) against a plain loop") {
  Cropping2D c(1, 0, 2, 1);
  c.build(Shape{4, 6, 2});
  CHECK(c.output_shape() == Shape{3, 3, 2});
  const Tensor x = random_tensor({2, 4, 6, 2}, 8);
  const std::vector<float> xs = x.to_vector<float>();
  const std::vector<float> y = values(c(ag::Variable(x)));
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int ch = 0; ch < 2; ++ch)
          CHECK(y[static_cast<std::size_t>(((n * 3 + i) * 3 + j) * 2 + ch)] ==
                xs[static_cast<std::size_t>(((n * 4 + i + 1) * 6 + j + 2) * 2 + ch)]);
  Cropping2D too_much(2);
  CHECK_THROWS_AS(too_much.build(Shape{4, 6, 2}), ShapeError);
  CHECK_THROWS_AS(Cropping2D(-1), ValueError);
  Cropping2D none;
  none.build(Shape{4, 6, 2});
  CHECK(none.output_shape() == Shape{4, 6, 2});
  check_layer_gradients(c, random_tensor({2, 4, 6, 2}, 9, DType::Float64));
}

TEST_CASE("UpSampling2D nearest against a plain loop; other interpolations refused") {
  UpSampling2D u(Size2(2, 3));
  u.build(Shape{2, 3, 2});
  CHECK(u.output_shape() == Shape{4, 9, 2});
  const Tensor x = random_tensor({2, 2, 3, 2}, 10);
  const std::vector<float> xs = x.to_vector<float>();
  const std::vector<float> y = values(u(ag::Variable(x)));
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 9; ++j)
        for (int ch = 0; ch < 2; ++ch)
          CHECK(y[static_cast<std::size_t>(((n * 4 + i) * 9 + j) * 2 + ch)] ==
                xs[static_cast<std::size_t>(((n * 2 + i / 2) * 3 + j / 3) * 2 + ch)]);
  CHECK_THROWS_AS(UpSampling2D(2, "bicubic"), ValueError);
  check_layer_gradients(u, random_tensor({2, 2, 3, 2}, 11, DType::Float64));
}

TEST_CASE("reshaping layers in functional and Sequential models") {
  auto input = Input({8, 8, 3});
  auto y = layer<Rescaling>(1.0 / 255)(input);
  y = layer<Cropping2D>(1)(y);                  // 6x6x3
  y = layer<UpSampling2D>()(y);                 // 12x12x3
  y = layer<Permute>(std::vector<std::int64_t>{3, 1, 2})(y);  // 3x12x12
  y = layer<Reshape>(Shape{3, -1})(y);          // 3x144
  auto model = std::make_shared<Model>(input, y);
  CHECK(model->output_shape() == Shape{3, 144});
  CHECK(values((*model)(ag::Variable(random_tensor({2, 8, 8, 3}, 12)))).size() == 2u * 3 * 144);

  auto seq = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{6}), std::make_shared<Dense>(4), std::make_shared<RepeatVector>(3),
      std::make_shared<Reshape>(Shape{2, 6}), std::make_shared<Flatten>(), std::make_shared<Dense>(2)});
  CHECK(seq->output_shape() == Shape{2});
  ag::Variable x(random_tensor({5, 6}, 13));
  ag::Variable out = (*seq)(x);
  CHECK(out.shape() == Shape{5, 2});
  ag::sum(out).backward();
  CHECK(seq->trainable_parameters().front().has_grad());
}

TEST_CASE("Resizing and UpSampling2D bilinear match Keras 3 (tf.image.resize), with gradients") {
  reset_layer_names();
  CHECK(Resizing(4, 4).name() == "resizing");
  CHECK(Resizing(4, 4).interpolation() == "bilinear");
  CHECK_THROWS_AS(Resizing(0, 4), ValueError);
  CHECK_THROWS_AS(Resizing(4, 4, "area"), ValueError);
  {
    Resizing r(5, 7);
    check_against_keras(r, "resizing_bilinear_up");
    check_layer_gradients(r, random_tensor({1, 3, 4, 2}, 30, DType::Float64));
  }
  {
    Resizing r(2, 3);
    check_against_keras(r, "resizing_bilinear_down");
  }
  {
    Resizing r(5, 7, "nearest");
    check_against_keras(r, "resizing_nearest_up");
  }
  {
    Resizing r(2, 3, "nearest");
    check_against_keras(r, "resizing_nearest_down");
    check_layer_gradients(r, random_tensor({2, 5, 7, 2}, 31, DType::Float64));
  }
  {
    UpSampling2D u(Size2(2, 3), "bilinear");
    check_against_keras(u, "up_sampling2d_bilinear");
    check_layer_gradients(u, random_tensor({1, 3, 4, 2}, 32, DType::Float64));
  }
  // In a functional model, before a Conv2D.
  auto input = Input({5, 5, 3});
  auto y = layer<Conv2D>(2, 3)(layer<Resizing>(8, 6)(input));
  auto model = std::make_shared<Model>(input, y);
  CHECK(model->output_shape() == Shape{6, 4, 2});
  CHECK((*model)(ag::Variable(random_tensor({2, 5, 5, 3}, 33))).shape() == Shape{2, 6, 4, 2});
}
