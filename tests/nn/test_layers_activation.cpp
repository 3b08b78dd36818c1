// Activation layers: every Keras activation name through Activation (against
// plain formulas), LeakyReLU, ELU and Softmax(axis) (against plain loops),
// their names and gradients, in Sequential and functional models.
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

double reference(ActivationKind kind, double x) {
  switch (kind) {
    case ActivationKind::Linear: return x;
    case ActivationKind::Relu: return std::max(x, 0.0);
    case ActivationKind::Relu6: return std::min(std::max(x, 0.0), 6.0);
    case ActivationKind::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case ActivationKind::Tanh: return std::tanh(x);
    case ActivationKind::Gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ActivationKind::Silu: return x / (1.0 + std::exp(-x));
    case ActivationKind::Softplus: return std::log1p(std::exp(x));
    case ActivationKind::LeakyRelu: return x >= 0 ? x : 0.2 * x;
    case ActivationKind::Elu: return x > 0 ? x : std::exp(x) - 1.0;
    case ActivationKind::Softmax: break;
  }
  return NAN;
}

}  // namespace

TEST_CASE("Activation: every elementwise Keras activation against its formula, with gradients") {
  const Tensor x = random_tensor({3, 7}, 1, DType::Float32, -4.0, 4.0);
  const std::vector<float> xs = x.to_vector<float>();
  for (const char* name :
       {"linear", "relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "swish", "softplus", "leaky_relu", "elu"}) {
    CAPTURE(name);
    Activation layer(name);
    const ActivationKind kind = layer.activation();
    const std::vector<float> y = values(layer(ag::Variable(x)));
    REQUIRE(y.size() == xs.size());
    for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(reference(kind, xs[i])).epsilon(1e-5));
    // Away from the kinks of relu/relu6/leaky_relu.
    if (kind != ActivationKind::Relu && kind != ActivationKind::Relu6 && kind != ActivationKind::LeakyRelu)
      check_layer_gradients(layer, random_tensor({2, 7}, 2, DType::Float64, -3.0, 3.0));
  }
  CHECK(std::string(activation_name(parse_activation("swish"))) == "silu");
  CHECK(std::string(activation_name(parse_activation("leaky_relu"))) == "leaky_relu");
  CHECK_THROWS_AS(parse_activation("selu"), ValueError);
  // Dense takes the new names too.
  Dense dense(3, "gelu");
  CHECK(dense.activation() == ActivationKind::Gelu);
}

TEST_CASE("LeakyReLU: Keras's default slope 0.3, name, gradient") {
  reset_layer_names();
  LeakyReLU leaky;
  CHECK(leaky.name() == "leaky_re_lu");
  CHECK(leaky.negative_slope() == 0.3);
  const Tensor x = from_vector<float>({-2.0f, -0.5f, 0.0f, 1.5f}, {1, 4});
  CHECK(values(leaky(ag::Variable(x))) == std::vector<float>{-0.6f, -0.15f, 0.0f, 1.5f});
  LeakyReLU steep(0.1);
  const std::vector<float> y = values(steep(ag::Variable(x)));
  CHECK(y[0] == doctest::Approx(-0.2));
  // Nonzero inputs only: the kink at 0 has no derivative.
  check_layer_gradients(steep, from_vector<double>({-2.0, -0.5, 0.25, 1.5}, {1, 4}));
  CHECK_THROWS_AS(LeakyReLU(-1.0), ValueError);
}

TEST_CASE("ELU: alpha, gradient") {
  ELU elu_layer(0.5);
  CHECK(elu_layer.name().rfind("elu", 0) == 0);
  const Tensor x = from_vector<float>({-1.0f, 2.0f}, {1, 2});
  const std::vector<float> y = values(elu_layer(ag::Variable(x)));
  CHECK(y[0] == doctest::Approx(0.5 * (std::exp(-1.0) - 1.0)));
  CHECK(y[1] == doctest::Approx(2.0));
  check_layer_gradients(elu_layer, random_tensor({3, 2}, 5, DType::Float64, -2.0, 2.0));
}

TEST_CASE("Softmax(axis) against a plain loop over each axis; the last axis feeds the fused loss") {
  const Tensor x = random_tensor({2, 3, 4}, 9, DType::Float32, -3.0, 3.0);
  const std::vector<float> xs = x.to_vector<float>();
  const auto at = [&](const std::vector<float>& v, int n, int i, int j) { return v[(n * 3 + i) * 4 + j]; };
  for (std::int64_t axis : {-1, 1, 2, -2}) {
    CAPTURE(axis);
    Softmax layer(axis);
    const std::vector<float> y = values(layer(ag::Variable(x)));
    const int a = axis < 0 ? static_cast<int>(axis) + 3 : static_cast<int>(axis);
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) {
          double denom = 0.0;
          if (a == 2)
            for (int k = 0; k < 4; ++k) denom += std::exp(at(xs, n, i, k));
          else
            for (int k = 0; k < 3; ++k) denom += std::exp(at(xs, n, k, j));
          CHECK(at(y, n, i, j) == doctest::Approx(std::exp(at(xs, n, i, j)) / denom).epsilon(1e-5));
        }
    CHECK((layer.logits_activation() == ActivationKind::Softmax) == (a == 2));
    check_layer_gradients(layer, random_tensor({2, 3, 4}, 10, DType::Float64));
  }
  Softmax batch_axis(0);
  CHECK_THROWS_AS(batch_axis.build(Shape{3, 4}), ShapeError);
  Softmax too_far(3);
  CHECK_THROWS_AS(too_far.build(Shape{3, 4}), ShapeError);
}

TEST_CASE("activation layers in Sequential and functional models") {
  auto input = Input({4, 3});
  auto y = layer<LeakyReLU>()(input);
  y = layer<Activation>("gelu")(y);
  y = layer<ELU>()(y);
  y = layer<Softmax>(1)(y);
  auto model = std::make_shared<Model>(input, y);
  CHECK(model->output_shape() == Shape{4, 3});
  const Tensor x = random_tensor({2, 4, 3}, 3);
  const std::vector<float> out = values((*model)(ag::Variable(x)));
  // Each column sums to 1 over axis 1.
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c) {
      double s = 0.0;
      for (int i = 0; i < 4; ++i) s += out[static_cast<std::size_t>((n * 4 + i) * 3 + c)];
      CHECK(s == doctest::Approx(1.0));
    }
  auto seq = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{5}), std::make_shared<Dense>(4, "silu"), std::make_shared<LeakyReLU>(),
      std::make_shared<Dense>(3), std::make_shared<Softmax>()});
  CHECK(seq->output_shape() == Shape{3});
  CHECK(seq->logits_activation() == ActivationKind::Softmax);
  CHECK(values((*seq)(ag::Variable(random_tensor({2, 5}, 4)))).size() == 6);
}
