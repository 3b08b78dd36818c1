// LayerNormalization and Embedding: Keras names, defaults, weight names and
// shapes, values against plain loops, gradients through their weights, and
// use in Sequential and functional models.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "layer_check.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
using namespace petal::nn::testing;

TEST_CASE("LayerNormalization: Keras defaults, weights gamma then beta, values against a plain loop") {
  reset_layer_names();
  LayerNormalization ln;
  CHECK(ln.name() == "layer_normalization");
  CHECK(ln.options().epsilon == 1e-3);
  CHECK(ln.options().axis == std::vector<std::int64_t>{-1});
  ln.build(Shape{3, 5});
  std::vector<std::string> names;
  for (const auto& w : ln.weights()) names.push_back(w.name);
  CHECK(names == std::vector<std::string>{"layer_normalization/gamma", "layer_normalization/beta"});
  CHECK(ln.gamma().shape() == Shape{5});
  CHECK(ln.beta().shape() == Shape{5});
  CHECK(ln.count_params() == 10);
  CHECK(values(ln.gamma()) == std::vector<float>(5, 1.0f));

  ag::Variable(ln.gamma()).set_data(random_tensor({5}, 1, DType::Float32, 0.5, 1.5));
  ag::Variable(ln.beta()).set_data(random_tensor({5}, 2));
  const Tensor x = random_tensor({2, 3, 5}, 3, DType::Float32, -2.0, 2.0);
  const std::vector<float> xs = x.to_vector<float>(), g = values(ln.gamma()), b = values(ln.beta());
  const std::vector<float> y = values(ln(ag::Variable(x)));
  for (int row = 0; row < 6; ++row) {
    double mean = 0.0, var = 0.0;
    for (int k = 0; k < 5; ++k) mean += xs[static_cast<std::size_t>(row * 5 + k)] / 5.0;
    for (int k = 0; k < 5; ++k) var += std::pow(xs[static_cast<std::size_t>(row * 5 + k)] - mean, 2) / 5.0;
    for (int k = 0; k < 5; ++k) {
      const auto i = static_cast<std::size_t>(row * 5 + k);
      CHECK(y[i] == doctest::Approx((xs[i] - mean) / std::sqrt(var + 1e-3) * g[k] + b[k]).epsilon(1e-4));
    }
  }
  check_layer_gradients(ln, random_tensor({2, 3, 5}, 4, DType::Float64));
}

TEST_CASE("LayerNormalization over several axes, without center/scale") {
  LayerNormalization ln({.axis = {1, 2}, .epsilon = 1e-5});
  ln.build(Shape{3, 4});
  CHECK(ln.gamma().shape() == Shape{3, 4});
  ag::Variable(ln.gamma()).set_data(random_tensor({3, 4}, 5, DType::Float32, 0.5, 1.5));
  ag::Variable(ln.beta()).set_data(random_tensor({3, 4}, 6));
  const Tensor x = random_tensor({2, 3, 4}, 7);
  const std::vector<float> xs = x.to_vector<float>(), g = values(ln.gamma()), b = values(ln.beta());
  const std::vector<float> y = values(ln(ag::Variable(x)));
  for (int n = 0; n < 2; ++n) {
    double mean = 0.0, var = 0.0;
    for (int k = 0; k < 12; ++k) mean += xs[static_cast<std::size_t>(n * 12 + k)] / 12.0;
    for (int k = 0; k < 12; ++k) var += std::pow(xs[static_cast<std::size_t>(n * 12 + k)] - mean, 2) / 12.0;
    for (int k = 0; k < 12; ++k) {
      const auto i = static_cast<std::size_t>(n * 12 + k);
      CHECK(y[i] == doctest::Approx((xs[i] - mean) / std::sqrt(var + 1e-5) * g[k] + b[k]).epsilon(1e-4));
    }
  }
  check_layer_gradients(ln, random_tensor({2, 3, 4}, 8, DType::Float64));

  // The first of two axes (not the last): gamma broadcasts along axis 1.
  LayerNormalization first({.axis = {1}});
  first.build(Shape{3, 4});
  CHECK(first.gamma().shape() == Shape{3});
  check_layer_gradients(first, random_tensor({2, 3, 4}, 9, DType::Float64));

  LayerNormalization plain({.center = false, .scale = false});
  plain.build(Shape{4});
  CHECK(plain.weights().empty());
  const std::vector<float> z = values(plain(ag::Variable(random_tensor({1, 4}, 10))));
  double s = 0.0;
  for (float v : z) s += v;
  CHECK(s == doctest::Approx(0.0).epsilon(1e-5).scale(1.0));

  LayerNormalization batch_axis({.axis = {0}});
  CHECK_THROWS_AS(batch_axis.build(Shape{4}), ShapeError);
  LayerNormalization twice({.axis = {1, -1}});
  CHECK_THROWS_AS(twice.build(Shape{4}), ShapeError);
}

TEST_CASE("Embedding: Keras defaults, weight embeddings [input_dim, output_dim], lookup, gradient") {
  reset_layer_names();
  Embedding emb(10, 3);
  CHECK(emb.name() == "embedding");
  emb.build(Shape{4});
  CHECK(emb.output_shape() == Shape{4, 3});
  REQUIRE(emb.weights().size() == 1);
  CHECK(emb.weights()[0].name == "embedding/embeddings");
  CHECK(emb.embeddings().shape() == Shape{10, 3});
  for (float v : values(emb.embeddings())) {
    CHECK(v >= -0.05f);
    CHECK(v <= 0.05f);
  }
  const std::vector<float> table = values(emb.embeddings());
  const std::vector<std::int64_t> ids{3, 0, 9, 3, 1, 2, 7, 7};
  for (DType dtype : {DType::Int64, DType::Float32}) {
    const Tensor x = from_vector<std::int64_t>(ids, {2, 4}).to(dtype);
    ag::Variable y = emb(ag::Variable(x));
    CHECK(y.shape() == Shape{2, 4, 3});
    const std::vector<float> ys = values(y);
    for (std::size_t i = 0; i < ids.size(); ++i)
      for (std::size_t d = 0; d < 3; ++d) CHECK(ys[i * 3 + d] == table[static_cast<std::size_t>(ids[i]) * 3 + d]);
  }
  CHECK_THROWS_AS(emb(ag::Variable(from_vector<std::int64_t>({0, 1, 2, 10}, {1, 4}))), IndexError);
  CHECK_THROWS_AS(Embedding(0, 3), ValueError);

  // Gradient through the table: repeated ids accumulate.
  to_float64(emb);
  emb.zero_grad();
  ag::sum(emb(ag::Variable(from_vector<std::int64_t>(ids, {2, 4})))).backward();
  const std::vector<double> grad = emb.embeddings().grad().to_vector<double>();
  for (std::int64_t row = 0; row < 10; ++row) {
    double count = 0;
    for (std::int64_t id : ids) count += id == row;
    for (int d = 0; d < 3; ++d) CHECK(grad[static_cast<std::size_t>(row * 3 + d)] == count);
  }
  check_layer_gradients(emb, from_vector<std::int64_t>(ids, {2, 4}).to(DType::Float64), /*check_input=*/false);
}

TEST_CASE("Embedding and LayerNormalization in functional and Sequential models") {
  auto tokens = Input({5});
  auto y = layer<Embedding>(20, 8)(tokens);
  y = layer<LayerNormalization>()(y);
  y = layer<Dense>(2)(layer<Flatten>()(y));
  auto model = std::make_shared<Model>(tokens, y);
  CHECK(model->output_shape() == Shape{2});
  CHECK(model->count_params() == 20 * 8 + 16 + (40 * 2 + 2));
  const Tensor ids = from_vector<float>({1, 2, 3, 4, 5, 19, 0, 0, 7, 7}, {2, 5});
  ag::Variable out = (*model)(ag::Variable(ids));
  CHECK(out.shape() == Shape{2, 2});
  ag::sum(out).backward();
  for (const auto& p : model->trainable_parameters()) CHECK(p.has_grad());

  auto seq = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{3}), std::make_shared<Embedding>(6, 4),
      std::make_shared<LayerNormalization>(), std::make_shared<Flatten>()});
  CHECK(seq->output_shape() == Shape{12});
}
