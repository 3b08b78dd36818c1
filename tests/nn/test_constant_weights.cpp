// nn::ConstantWeights: inference with a model's weights declared constant
// (GEMMs read packed copies of them) gives the bits it gives without, for
// MobileNetV2's fused blocks (whole images, row parts and channel parts) and
// a user's Conv/Dense network, on 1 and 2 threads; petal's own writers of
// weights refuse while the scope lives and work again after it; a write the
// scope cannot refuse is reported; predict() gives the outputs of the plain
// calls while it declares the weights from its second batch on.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "core/thread_pool.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
#include "tests/nn/random_weights.hpp"
#include "temp_dir.hpp"

using namespace petal;
using namespace petal::nn;
using petal::test::random_tensor;
using petal::test::randomise;

namespace {

std::vector<float> infer(Module& model, const Tensor& x) {
  ag::NoGradGuard no_grad;
  return model(ag::Variable(x, false)).data().to_vector<float>();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct ThreadsRestorer {
  int saved = num_threads();
  ~ThreadsRestorer() { set_num_threads(saved); }
};

// Outputs of `model` on `x` without and with its weights declared constant
// (twice: the first call packs, the second reads the packed copies).
void check_same_bits(Module& model, const Tensor& x, const std::string& what) {
  const std::vector<float> plain = infer(model, x);
  ConstantWeights constant(model);
  const std::vector<float> first = infer(model, x), second = infer(model, x);
  INFO(what);
  CHECK(same_bits(plain, first));
  CHECK(same_bits(plain, second));
  CHECK(constant.changed_weights().empty());
}

std::shared_ptr<Sequential> conv_dense_net() {
  // 10x10 pixels through 1x1 convolutions (100 GEMM rows per image), then
  // Dense layers: 40 images give 40 rows, 130 images 130.
  auto bn = [](const char* name) { return std::make_shared<BatchNormalization>(BatchNormOptions{.name = name}); };
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{10, 10, 24}),
      std::make_shared<Conv2D>(96, 1, ConvOptions{.use_bias = false, .name = "expand"}), bn("expand_bn"),
      std::make_shared<ReLU>(6.0, "expand_relu"),
      std::make_shared<Conv2D>(40, 3, ConvOptions{.padding = Padding::Same, .name = "conv3"}),
      std::make_shared<GlobalAveragePooling2D>("gap"),
      std::make_shared<Dense>(300, "relu", DenseOptions{.name = "hidden"}),
      std::make_shared<Dense>(17, ActivationSpec{}, DenseOptions{.name = "logits"})});
}

}  // namespace

TEST_CASE("MobileNetV2 with its weights declared constant gives the same bits") {
  // 96x96 input: the 12x12, 6x6 and 3x3 blocks of batch 1 on 2 threads run
  // as channel parts (column windows of the expansions, K windows of the
  // projections), larger batches as whole images.
  ThreadsRestorer restore;
  auto model = std::make_shared<MobileNetV2>(Shape{96, 96, 3}, 1.0, true);
  randomise(*model, 11);
  model->eval();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (std::int64_t batch : {1, 3}) {
      check_same_bits(*model, random_tensor({batch, 96, 96, 3}, 20 + batch),
                      "threads=" + std::to_string(threads) + " batch=" + std::to_string(batch));
    }
  }
}

TEST_CASE("a user's Conv/Dense network with its weights declared constant gives the same bits") {
  ThreadsRestorer restore;
  auto model = conv_dense_net();
  randomise(*model, 31);
  model->eval();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (std::int64_t batch : {1, 40, 130})
      check_same_bits(*model, random_tensor({batch, 10, 10, 24}, 40 + batch),
                      "threads=" + std::to_string(threads) + " batch=" + std::to_string(batch));
  }
}

TEST_CASE("while weights are declared constant, petal's writers of weights refuse; afterwards they work") {
  auto model = conv_dense_net();
  randomise(*model, 51);
  const std::filesystem::path dir = test::nn_temp_dir("constant_weights");
  const std::filesystem::path file = dir / "weights.safetensors";
  save_weights(*model, file);
  const std::vector<ag::Variable> parameters = model->trainable_parameters();
  for (ag::Variable p : parameters) p.set_grad(full(p.shape(), 0.5));
  SGD sgd(parameters, 0.1);
  const std::vector<float> before = parameters.front().data().to_vector<float>();
  {
    ConstantWeights constant(*model);
    CHECK_THROWS_WITH_AS(sgd.step(), doctest::Contains("declared constant"), Error);
    CHECK_THROWS_WITH_AS(load_weights(*model, file), doctest::Contains("declared constant"), Error);
    CHECK(same_bits(parameters.front().data().to_vector<float>(), before));  // nothing was written
  }
  sgd.step();
  CHECK_FALSE(same_bits(parameters.front().data().to_vector<float>(), before));
  load_weights(*model, file);
  CHECK(same_bits(parameters.front().data().to_vector<float>(), before));
  std::filesystem::remove_all(dir);
}

TEST_CASE("ConstantWeights names a weight written behind its back") {
  auto model = conv_dense_net();
  randomise(*model, 61);
  ConstantWeights constant(*model);
  CHECK(constant.changed_weights().empty());
  std::vector<WeightRef> weights = model->weights();
  const WeightRef* hidden = nullptr;
  for (const WeightRef& w : weights)
    if (w.path == "hidden/kernel") hidden = &w;
  REQUIRE(hidden != nullptr);
  float* element = hidden->variable.data().data<float>() + 5;
  const float saved = *element;
  *element = saved + 1.0f;  // a pointer write: nothing refuses it
  CHECK(constant.changed_weights() == std::vector<std::string>{"hidden/kernel"});
  *element = saved;  // restored: the scope ends quietly
  CHECK(constant.changed_weights().empty());
}

TEST_CASE("predict over several batches, weights declared from the second, equals the plain calls") {
  ThreadsRestorer restore;
  set_num_threads(2);
  auto model = conv_dense_net();
  randomise(*model, 71);
  model->eval();
  const Tensor x = random_tensor({150, 10, 10, 24}, 81);
  std::vector<float> expected;
  for (std::int64_t start = 0; start < 150; start += 64) {
    const std::int64_t rows = std::min<std::int64_t>(64, 150 - start);
    const std::vector<float> part = infer(*model, x.slice(0, start, start + rows).contiguous());
    expected.insert(expected.end(), part.begin(), part.end());
  }
  Trainer trainer(model);
  CHECK(same_bits(trainer.predict(x, 64).to_vector<float>(), expected));
  // The scope has ended: the weights can change again.
  CHECK_FALSE(ops::is_declared_constant(model->weights().front().variable.data()));
}

TEST_CASE("MobileNetV2 blocks prepared under ConstantWeights are used while it lives and dropped when it ends") {
  // Under the scope each inverted-residual block is folded and prepared
  // once: a write behind the promise is not seen (which shows the prepared
  // block is what runs) and is reported. After the scope, inference follows
  // the weights again: it equals a model that was never declared.
  ThreadsRestorer restore;
  set_num_threads(2);
  auto make = [] {
    auto m = std::make_shared<MobileNetV2>(Shape{64, 64, 3}, 0.35, true);
    randomise(*m, 91);
    m->eval();
    return m;
  };
  auto model = make(), fresh = make();
  const Tensor x = random_tensor({1, 64, 64, 3}, 93);
  auto gamma_of = [](Module& m) {
    for (const WeightRef& w : m.weights())
      if (w.path == "block_2_expand_BN/gamma") return w.variable.data();
    return Tensor();
  };
  REQUIRE(gamma_of(*model).defined());
  const std::vector<float> before = infer(*model, x);
  {
    ConstantWeights constant(*model);
    CHECK(same_bits(infer(*model, x), before));
    gamma_of(*model).data<float>()[3] *= 1.5f;  // behind the promise
    CHECK(same_bits(infer(*model, x), before));
    CHECK(constant.changed_weights() == std::vector<std::string>{"block_2_expand_BN/gamma"});
  }
  gamma_of(*fresh).data<float>()[3] *= 1.5f;
  const std::vector<float> after = infer(*model, x);
  CHECK_FALSE(same_bits(after, before));
  CHECK(same_bits(after, infer(*fresh, x)));
}

TEST_CASE("evaluate over several batches, weights declared from the second, equals its batches evaluated apart") {
  ThreadsRestorer restore;
  set_num_threads(2);
  auto model = conv_dense_net();
  randomise(*model, 95);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy(), {"accuracy"});
  const Tensor x = random_tensor({96, 10, 10, 24}, 97);
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 96; ++i) labels.push_back(i % 17);
  const Tensor y = from_vector(labels);
  TensorBatchSource all(x, y, 32);
  const Logs whole = trainer.evaluate(all);
  double loss = 0.0, accuracy = 0.0;
  for (std::int64_t start = 0; start < 96; start += 32) {
    TensorBatchSource one(x.slice(0, start, start + 32).contiguous(), y.slice(0, start, start + 32).contiguous(), 32);
    const Logs part = trainer.evaluate(one);  // a single batch: nothing declared
    loss += part.at("loss") / 3.0;
    accuracy += part.at("accuracy") / 3.0;
  }
  CHECK(whole.at("loss") == doctest::Approx(loss).epsilon(1e-6));
  CHECK(whole.at("accuracy") == doctest::Approx(accuracy).epsilon(1e-6));
  CHECK_FALSE(ops::is_declared_constant(model->weights().front().variable.data()));
}
