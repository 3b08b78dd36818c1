// affine_transform_images against Keras 3's ops.image.affine_transform for
// every fill mode and interpolation (data/keras_affine_refs.hpp, made by
// data/keras_affine_refs.py), its gradient, and RandomRotation / RandomZoom:
// identity in inference, Keras's transforms in training mode, seeds, and use
// in Sequential and functional models.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <numbers>

#include "autograd/gradcheck.hpp"
#include "core/error.hpp"
#include "data/keras_affine_refs.hpp"
#include "layer_check.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
using namespace petal::nn::testing;

TEST_CASE("affine_transform_images equals Keras 3 for every fill mode and interpolation") {
  const Tensor x = from_vector<float>(keras_affine_refs::images(), {4, 5, 6, 2});
  for (const auto& c : keras_affine_refs::cases()) {
    CAPTURE(c.fill_mode);
    CAPTURE(c.interpolation);
    const auto y = values(affine_transform_images(ag::Variable(x), keras_affine_refs::transforms(), c.interpolation,
                                                  c.fill_mode, 0.5));
    REQUIRE(y.size() == c.output.size());
    std::size_t off = 0;
    for (std::size_t i = 0; i < y.size(); ++i) off += std::abs(y[i] - c.output[i]) > 1e-5f;
    CHECK(off == 0);
  }
}

TEST_CASE("affine_transform_images: gradient with respect to the images; bad arguments") {
  const Tensor x = random_tensor({4, 5, 6, 2}, 5, DType::Float64);
  for (const char* fill : {"constant", "reflect"}) {
    CAPTURE(fill);
    auto fn = [&](const std::vector<ag::Variable>& v) {
      return affine_transform_images(v[0], keras_affine_refs::transforms(), "bilinear", fill, 0.5);
    };
    const ag::GradcheckResult r = ag::gradcheck(fn, {ag::Variable(x, true)});
    CHECK_MESSAGE(r.ok, r.message);
  }
  const ag::Variable images(zeros({2, 3, 3, 1}));
  const std::vector<std::array<double, 8>> one = {{1, 0, 0, 0, 1, 0, 0, 0}};
  CHECK_THROWS_AS(affine_transform_images(images, one), ValueError);  // 1 transform, 2 images
  const std::vector<std::array<double, 8>> two(2, one[0]);
  CHECK_THROWS_AS(affine_transform_images(images, two, "bicubic"), ValueError);
  CHECK_THROWS_AS(affine_transform_images(images, two, "bilinear", "mirror"), ValueError);
  CHECK_THROWS_AS(affine_transform_images(ag::Variable(zeros({3, 3, 1})), two), ShapeError);
  // The identity transform returns the images exactly.
  const Tensor r = random_tensor({2, 3, 3, 1}, 6);
  CHECK(values(affine_transform_images(ag::Variable(r), two)) == values(ag::Variable(r)));
}

TEST_CASE("RandomRotation: identity in inference; a quarter turn; the seed's angles as Keras draws them") {
  reset_layer_names();
  RandomRotation rotation(0.2, AffineAugmentOptions{.seed = 7});
  CHECK(rotation.name() == "random_rotation");
  const Tensor x = random_tensor({3, 4, 4, 2}, 8);
  CHECK(values(rotation(ag::Variable(x))) == values(ag::Variable(x)));

  // factor (0.25, 0.25): every image turned by exactly a quarter turn, as
  // Keras maps it (output (x, y) reads input (x', y') = R(-90°) about the centre).
  RandomRotation quarter(std::pair{0.25, 0.25}, AffineAugmentOptions{.seed = 1});
  const auto y = values(quarter(ag::Variable(x), true));
  const auto in = values(ag::Variable(x));
  auto at = [](const std::vector<float>& v, int n, int i, int j, int c) {
    return v[static_cast<std::size_t>(((n * 4 + i) * 4 + j) * 2 + c)];
  };
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        for (int c = 0; c < 2; ++c) CHECK(at(y, n, i, j, c) == doctest::Approx(at(in, n, j, 3 - i, c)).epsilon(1e-5));

  // Training mode: each image's angle comes from the seeded generator.
  Generator gen(7);
  std::vector<std::array<double, 8>> transforms;
  for (int n = 0; n < 3; ++n) {
    const double a = (-0.2 + 0.4 * gen.uniform_double()) * 2.0 * std::numbers::pi;
    const double c = std::cos(a), s = std::sin(a);
    transforms.push_back({c, -s, (3 - (c * 3 - s * 3)) / 2, s, c, (3 - (s * 3 + c * 3)) / 2, 0, 0});
  }
  const auto expected = values(affine_transform_images(ag::Variable(x), transforms, "bilinear", "reflect"));
  CHECK(values(rotation(ag::Variable(x), true)) == expected);
  CHECK_THROWS_AS(RandomRotation(std::pair{0.3, 0.1}), ValueError);
  CHECK_THROWS_AS(RandomRotation(0.1, AffineAugmentOptions{.fill_mode = "mirror"}), ValueError);
}

TEST_CASE("RandomZoom: identity in inference and at factor 0; zoom about the centre; in models") {
  const Tensor x = random_tensor({2, 5, 7, 3}, 9);
  RandomZoom none(0.0, std::nullopt, AffineAugmentOptions{.seed = 3});
  CHECK(values(none(ag::Variable(x), true)) == values(ag::Variable(x)));
  RandomZoom zoom(std::pair{-0.5, -0.5}, std::pair{0.25, 0.25}, AffineAugmentOptions{.fill_mode = "constant"});
  CHECK(values(zoom(ag::Variable(x))) == values(ag::Variable(x)));  // inference
  const std::vector<std::array<double, 8>> expected_transform(
      2, {1.25, 0, 3.0 * (1 - 1.25), 0, 0.5, 2.0 * (1 - 0.5), 0, 0});
  CHECK(values(zoom(ag::Variable(x), true)) ==
        values(affine_transform_images(ag::Variable(x), expected_transform, "bilinear", "constant")));
  CHECK_THROWS_AS(RandomZoom(-1.5), ValueError);

  // In a functional model and a Sequential, training only.
  auto image = Input({5, 7, 3});
  auto out = layer<RandomZoom>(0.2, std::nullopt, AffineAugmentOptions{.seed = 4})(
      layer<RandomRotation>(0.1, AffineAugmentOptions{.seed = 5})(image));
  Model model(image, out);
  CHECK(model.output_shape() == Shape{5, 7, 3});
  CHECK(values(model(ag::Variable(x))) == values(ag::Variable(x)));
  CHECK(values(model(ag::Variable(x), true)) != values(ag::Variable(x)));
  Sequential seq({std::make_shared<InputLayer>(Shape{5, 7, 3}), std::make_shared<RandomRotation>(0.1)});
  CHECK(seq.output_shape() == Shape{5, 7, 3});
}
