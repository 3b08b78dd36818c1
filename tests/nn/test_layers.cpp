// Modules and layers: Keras names, shape inference, parameter counts and
// summary(), frozen layers, BatchNormalization's frozen semantics, the conv
// family's shapes, Residual, and the fused softmax loss.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "autograd/functions.hpp"
#include "core/error.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::vector<float> values(const ag::Variable& v) { return v.data().to_vector<float>(); }

}  // namespace

TEST_CASE("layers get Keras's automatic names, explicit names are kept") {
  reset_layer_names();
  Dense a(4), b(4), c(4, "relu", {.use_bias = true, .name = "head"});
  Conv2D conv(8, 3);
  BatchNormalization bn;
  ReLU relu(6.0);
  Flatten flatten;
  CHECK(a.name() == "dense");
  CHECK(b.name() == "dense_1");
  CHECK(c.name() == "head");
  CHECK(conv.name() == "conv2d");
  CHECK(bn.name() == "batch_normalization");
  CHECK(relu.name() == "re_lu");
  CHECK(flatten.name() == "flatten");
  reset_layer_names();
  CHECK(Dense(1).name() == "dense");
}

TEST_CASE("the lab's dense model: shapes before data, weight names, 55,321,805 parameters in summary()") {
  reset_layer_names();
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Flatten>(Shape{192, 192, 3}), std::make_shared<Dense>(500, "relu"),
      std::make_shared<Dense>(50, "relu"), std::make_shared<Dense>(5, "softmax")});
  REQUIRE(model->built());
  CHECK(model->output_shape() == Shape{5});
  CHECK(model->layers()[0]->output_shape() == Shape{110592});
  CHECK(model->count_params() == 55321805);
  CHECK(model->count_trainable_params() == 55321805);
  CHECK(model->logits_activation() == ActivationKind::Softmax);
  std::vector<std::string> names;
  for (const auto& w : model->weights()) names.push_back(w.name);
  CHECK(names == std::vector<std::string>{"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias",
                                          "dense_2/kernel", "dense_2/bias"});
  const std::string s = model->summary();
  CHECK(s.find("Model: \"sequential\"") != std::string::npos);
  CHECK(s.find("dense (Dense)") != std::string::npos);
  CHECK(s.find("(None, 110592)") != std::string::npos);
  CHECK(s.find("55,296,500") != std::string::npos);
  CHECK(s.find("Total params: 55,321,805") != std::string::npos);
  CHECK(s.find("Trainable params: 55,321,805") != std::string::npos);
  CHECK(s.find("Non-trainable params: 0") != std::string::npos);
}

TEST_CASE("Sequential::add builds as it grows; an unbuilt model builds on first call") {
  reset_layer_names();
  Sequential model;
  model.add(std::make_shared<InputLayer>(Shape{3}));
  model.add(std::make_shared<Dense>(4, "tanh"));
  CHECK(model.output_shape() == Shape{4});
  model.add(std::make_shared<Dense>(2));
  CHECK(model.output_shape() == Shape{2});
  CHECK(model.summary().find("InputLayer") == std::string::npos);

  Sequential lazy({std::make_shared<Dense>(3)});
  CHECK_FALSE(lazy.built());
  ag::Variable y = lazy(ag::Variable(ones({2, 7})));
  CHECK(y.shape() == Shape{2, 3});
  CHECK(lazy.input_shape() == Shape{7});
  CHECK_THROWS_AS(lazy(ag::Variable(ones({2, 6}))), ShapeError);
}

TEST_CASE("Dense computes activation(x @ kernel + bias) with glorot-uniform kernels and zero biases") {
  manual_seed(7);
  Dense d(2, "relu");
  d.build({3});
  const auto k = values(d.kernel());
  const float limit = std::sqrt(6.0f / 5.0f);
  for (float v : k) CHECK(std::abs(v) <= limit);
  CHECK(values(d.bias()) == std::vector<float>{0.0f, 0.0f});
  d.kernel().impl()->data.copy_(from_vector(std::vector<float>{1, -1, 2, -2, 3, -3}, {3, 2}));
  ag::Variable y = d(ag::Variable(from_vector(std::vector<float>{1, 1, 1}, {1, 3})));
  CHECK(values(y) == std::vector<float>{6.0f, 0.0f});
  // Seeded initialisation is reproducible.
  manual_seed(7);
  Dense again(2, "relu");
  again.build({3});
  CHECK(values(again.kernel()) == k);
}

TEST_CASE("he_normal stays within two standard deviations with the right spread") {
  Generator gen(3);
  Tensor t = he_normal()({100, 200}, gen);
  const auto v = t.to_vector<float>();
  const double std_target = std::sqrt(2.0 / 100.0);
  double sum2 = 0, largest = 0;
  for (float x : v) {
    largest = std::max(largest, double(std::abs(x)));
    sum2 += double(x) * x;
  }
  CHECK(largest <= 2.0 * std_target / 0.87962566103423978 + 1e-6);
  CHECK(std::sqrt(sum2 / v.size()) == doctest::Approx(std_target).epsilon(0.03));
}

TEST_CASE("a frozen layer has no trainable parameters, gets no gradient and is not updated") {
  reset_layer_names();
  manual_seed(1);
  auto first = std::make_shared<Dense>(4, "relu");
  auto second = std::make_shared<Dense>(3, "softmax");
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{std::make_shared<InputLayer>(Shape{5}), first, second});
  first->set_trainable(false);
  CHECK(model->count_trainable_params() == 3 * 4 + 3);
  CHECK(model->count_non_trainable_params() == 5 * 4 + 4);
  CHECK(model->trainable_parameters().size() == 2);

  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.5), Loss::sparse_categorical_crossentropy());
  const auto frozen_before = values(first->kernel());
  const auto trained_before = values(second->kernel());
  Batch batch{uniform({8, 5}, -1, 1), from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1})};
  for (int i = 0; i < 3; ++i) trainer.train_step(batch);
  CHECK(values(first->kernel()) == frozen_before);
  CHECK_FALSE(first->kernel().has_grad());
  CHECK(values(second->kernel()) != trained_before);

  // Freezing the container freezes every layer; unfreezing brings them back.
  model->set_trainable(false);
  CHECK(model->count_trainable_params() == 0);
  model->set_trainable(true);
  CHECK(model->count_trainable_params() == model->count_params());
}

TEST_CASE("BatchNormalization: batch statistics when trainable in training mode, moving statistics when frozen") {
  reset_layer_names();
  BatchNormalization bn({.momentum = 0.5, .epsilon = 1e-3, .name = ""});
  bn.build({2});
  CHECK(bn.count_params() == 8);
  CHECK(bn.count_trainable_params() == 4);
  std::vector<std::string> names;
  for (const auto& w : bn.weights()) names.push_back(w.name);
  CHECK(names == std::vector<std::string>{"batch_normalization/gamma", "batch_normalization/beta",
                                          "batch_normalization/moving_mean", "batch_normalization/moving_variance"});
  ag::Variable x(from_vector(std::vector<float>{1, 10, 3, 20, 5, 30}, {3, 2}));

  bn.train();
  ag::Variable y = bn(x);
  auto v = values(y);  // per-channel standardised: -1.22, 0, 1.22
  CHECK(v[0] == doctest::Approx(-1.2247).epsilon(1e-3));
  CHECK(v[4] == doctest::Approx(1.2247).epsilon(1e-3));
  auto mean = bn.weights()[2].variable.data().to_vector<float>();
  CHECK(mean[0] == doctest::Approx(1.5));  // 0 * 0.5 + 3 * 0.5
  CHECK(mean[1] == doctest::Approx(10.0));

  // Frozen: inference mode even while training (Keras semantics), no updates.
  bn.set_trainable(false);
  CHECK_FALSE(bn.uses_batch_statistics());
  ag::Variable frozen = bn(x);
  bn.eval();
  ag::Variable inference = bn(x);
  CHECK(values(frozen) == values(inference));
  CHECK(bn.weights()[2].variable.data().to_vector<float>() == mean);
}

TEST_CASE("conv-family layers infer TensorFlow's output shapes and count Keras's parameters") {
  reset_layer_names();
  Sequential base({std::make_shared<InputLayer>(Shape{192, 192, 3}),
                   std::make_shared<Conv2D>(32, 3, ConvOptions{.strides = 2, .padding = Padding::Same, .use_bias = false, .name = "Conv1"}),
                   std::make_shared<BatchNormalization>(BatchNormOptions{.momentum = 0.999, .epsilon = 1e-3, .name = "bn_Conv1"}),
                   std::make_shared<ReLU>(6.0, "Conv1_relu"),
                   std::make_shared<DepthwiseConv2D>(3, DepthwiseConvOptions{.strides = 2, .padding = Padding::Valid, .use_bias = false}),
                   std::make_shared<ZeroPadding2D>(0, 1, 0, 1),
                   std::make_shared<MaxPooling2D>(2),
                   std::make_shared<AveragePooling2D>(2, PoolOptions{.strides = Size2(1), .padding = Padding::Same, .name = ""}),
                   std::make_shared<GlobalAveragePooling2D>()});
  const auto& l = base.layers();
  CHECK(l[1]->output_shape() == Shape{96, 96, 32});
  CHECK(l[1]->count_params() == 3 * 3 * 3 * 32);
  CHECK(l[2]->count_params() == 4 * 32);
  CHECK(l[4]->output_shape() == Shape{47, 47, 32});
  CHECK(l[4]->count_params() == 3 * 3 * 32);
  CHECK(l[5]->output_shape() == Shape{48, 48, 32});
  CHECK(l[6]->output_shape() == Shape{24, 24, 32});
  CHECK(l[7]->output_shape() == Shape{24, 24, 32});
  CHECK(base.output_shape() == Shape{32});
  CHECK(base.count_non_trainable_params() == 2 * 32);
  CHECK(base.weights()[0].name == "Conv1/kernel");
  ag::Variable y = base(ag::Variable(uniform({2, 192, 192, 3}, 0, 1)));
  CHECK(y.shape() == Shape{2, 32});
}

TEST_CASE("GlobalMaxPooling2D takes each channel's maximum and sends the gradient there") {
  reset_layer_names();
  GlobalMaxPooling2D pool;
  pool.build(Shape{3, 4, 5});
  CHECK(pool.output_shape() == Shape{5});
  CHECK(pool.name() == "global_max_pooling2d");
  const Tensor x = uniform({2, 3, 4, 5}, -1, 1);
  ag::Variable xv(x, /*requires_grad=*/true);
  ag::Variable y = pool(xv);
  REQUIRE(y.shape() == Shape{2, 5});
  ag::sum(y).backward();
  const std::vector<float> xs = x.to_vector<float>(), ys = y.data().to_vector<float>();
  const std::vector<float> gs = xv.grad().to_vector<float>();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 5; ++c) {
      float best = -2;
      int best_at = -1;
      for (int p = 0; p < 12; ++p)
        if (xs[(n * 12 + p) * 5 + c] > best) best = xs[(n * 12 + p) * 5 + c], best_at = p;
      CHECK(ys[n * 5 + c] == best);
      for (int p = 0; p < 12; ++p) CHECK(gs[(n * 12 + p) * 5 + c] == (p == best_at ? 1.0f : 0.0f));
    }
}

TEST_CASE("BatchNormalization + ReLU(6) in a Sequential runs fused and equals the two layers run apart") {
  reset_layer_names();
  manual_seed(5);
  auto bn = std::make_shared<BatchNormalization>();
  auto relu = std::make_shared<ReLU>(6.0);
  Sequential fused({std::make_shared<InputLayer>(Shape{4, 4, 3}), bn, relu});
  bn->weights()[0].variable.mutable_data().copy_(from_vector(std::vector<float>{3, 4, 5}));
  ag::Variable x(uniform({2, 4, 4, 3}, -4, 4));
  for (bool training : {false, true}) {
    fused.set_training(training);
    // Run the unfused pair on a copy of the statistics so both see the same ones.
    Tensor mm = bn->weights()[2].variable.data().clone(), mv = bn->weights()[3].variable.data().clone();
    auto separate = values((*relu)((*bn)(x)));
    bn->weights()[2].variable.mutable_data().copy_(mm);
    bn->weights()[3].variable.mutable_data().copy_(mv);
    auto together = values(fused(x));
    REQUIRE(separate.size() == together.size());
    for (std::size_t i = 0; i < separate.size(); ++i) CHECK(together[i] == doctest::Approx(separate[i]).epsilon(1e-5));
  }
}

TEST_CASE("Residual adds its block's output to its input and checks shapes") {
  reset_layer_names();
  auto block = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Conv2D>(4, 1, ConvOptions{.strides = 1, .padding = Padding::Same, .use_bias = false, .name = "block_2_project"})});
  Residual res(block, "block_2_add");
  res.build({3, 3, 4});
  CHECK(res.type_name() == "Add");
  CHECK(res.weights()[0].name == "block_2_project/kernel");
  res.weights()[0].variable.mutable_data().zero_();
  ag::Variable x(uniform({1, 3, 3, 4}, -1, 1));
  CHECK(values(res(x)) == values(x));

  auto widening = std::make_shared<Conv2D>(8, 1);
  Residual bad(widening);
  CHECK_THROWS_AS(bad.build({3, 3, 4}), ShapeError);
}

TEST_CASE("cross-entropy: fused softmax path equals the probability path and stays finite for huge logits") {
  Tensor logits = from_vector(std::vector<float>{2.0f, -1.0f, 0.5f, 0.0f, 1.0f, 3.0f}, {2, 3});
  Tensor onehot = from_vector(std::vector<float>{1, 0, 0, 0, 0, 1}, {2, 3});
  Tensor idx = from_vector(std::vector<std::int64_t>{0, 2});
  ag::Variable z(logits);
  const double fused = Loss::categorical_crossentropy()(z, onehot, true).data().item<double>();
  const double probs = Loss::categorical_crossentropy()(ag::softmax(z), onehot, false).data().item<double>();
  const double sparse = Loss::sparse_categorical_crossentropy(true)(z, idx, true).data().item<double>();
  CHECK(fused == doctest::Approx(probs).epsilon(1e-5));
  CHECK(sparse == doctest::Approx(fused).epsilon(1e-6));

  ag::Variable huge(from_vector(std::vector<float>{1000.0f, -1000.0f, 0.0f}, {1, 3}));
  Tensor wrong = from_vector(std::vector<float>{0, 1, 0}, {1, 3});
  const double stable = Loss::categorical_crossentropy()(huge, wrong, true).data().item<double>();
  CHECK(stable == doctest::Approx(2000.0));
  CHECK_THROWS_AS(Loss::categorical_crossentropy()(z, idx, true), DTypeError);
  CHECK_THROWS_AS(Loss::sparse_categorical_crossentropy()(z, onehot, true), DTypeError);
  CHECK_THROWS_AS(Loss::parse("hinge"), ValueError);
  CHECK(one_hot(idx, 3).to_vector<float>() == onehot.to_vector<float>());
  CHECK_THROWS_AS(one_hot(from_vector(std::vector<std::int64_t>{3}), 3), IndexError);
}

TEST_CASE("accuracy metric: categorical and sparse targets") {
  Tensor out = from_vector(std::vector<float>{0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f}, {3, 2});
  Accuracy sparse;
  sparse.update(out, from_vector(std::vector<std::int64_t>{1, 0, 0}));
  CHECK(sparse.result() == doctest::Approx(2.0 / 3.0));
  Accuracy categorical;
  categorical.update(out, from_vector(std::vector<float>{0, 1, 1, 0, 0, 1}, {3, 2}));
  CHECK(categorical.result() == doctest::Approx(1.0));
  Mean m;
  m.update(1.0, 3);
  m.update(3.0, 1);
  CHECK(m.result() == doctest::Approx(1.5));
}
