// Inference with the batch split between threads (nn/batch_split.hpp): the
// split run gives the unsplit run's outputs, for functional models (several
// inputs and outputs, MobileNetV2) and Sequential, and it runs only where
// samples are independent: grad mode off, every layer in inference mode,
// at least a sample per thread, after one whole run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
#include "tests/nn/random_weights.hpp"

using namespace petal;
using namespace petal::nn;
using petal::test::random_tensor;
using petal::test::randomise;

namespace {

float max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  float worst = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

struct ThreadsRestorer {
  int saved = num_threads();
  ~ThreadsRestorer() { set_num_threads(saved); }
};

// A two-input, two-output functional model with Conv-BN-ReLU chains, a
// depthwise conv, a residual add, pooling and dense heads.
std::shared_ptr<Model> two_headed_model() {
  auto image = Input({9, 7, 3}, "image");
  auto extra = Input({4}, "extra");
  auto h = layer<Conv2D>(8, 3, ConvOptions{.padding = Padding::Same})(image);
  h = layer<BatchNormalization>()(h);
  h = layer<ReLU>(6.0)(h);
  auto d = layer<DepthwiseConv2D>(3, DepthwiseConvOptions{.padding = Padding::Same})(h);
  d = layer<BatchNormalization>()(d);
  h = layer<Add>()({h, d});
  h = layer<GlobalAveragePooling2D>()(h);
  auto merged = layer<Concatenate>()({h, layer<Dense>(6, "relu")(extra)});
  auto cls = layer<Dense>(5, "softmax", DenseOptions{.name = "cls"})(merged);
  auto reg = layer<Dense>(2, "", DenseOptions{.name = "reg"})(merged);
  return std::make_shared<Model>(std::vector{image, extra}, std::vector{cls, reg}, "two_headed");
}

}  // namespace

TEST_CASE("a functional model's split inference equals the whole batch's") {
  ThreadsRestorer restore;
  set_num_threads(2);
  auto model = two_headed_model();
  randomise(*model, 11);
  model->eval();
  for (std::int64_t batch : {2, 3, 7, 20}) {
    CAPTURE(batch);
    const ag::Variable image(random_tensor({batch, 9, 7, 3}, 100 + batch)), extra(random_tensor({batch, 4}, 200 + batch));
    ag::NoGradGuard no_grad;
    model->set_batch_split(BatchSplit::Never);
    const std::vector<ag::Variable> whole = (*model)({image, extra});
    model->set_batch_split(BatchSplit::Auto);
    (*model)({image, extra});  // the first split-enabled call may run whole
    CHECK(batch_split_applies(*model, {image, extra}));
    const std::vector<ag::Variable> split = (*model)({image, extra});
    REQUIRE(split.size() == 2);
    CHECK(max_abs_diff(split[0].data(), whole[0].data()) <= 1e-6f);
    CHECK(max_abs_diff(split[1].data(), whole[1].data()) <= 1e-5f);
  }
}

TEST_CASE("MobileNetV2 and Sequential split inference equal the whole batch's") {
  ThreadsRestorer restore;
  set_num_threads(2);
  ag::NoGradGuard no_grad;
  SUBCASE("MobileNetV2") {
    auto model = std::make_shared<MobileNetV2>(Shape{32, 32, 3}, 0.35, true);
    randomise(*model, 3);
    model->eval();
    const ag::Variable x(random_tensor({5, 32, 32, 3}, 4));
    model->set_batch_split(BatchSplit::Never);
    const Tensor whole = (*model)(x).data();
    model->set_batch_split(BatchSplit::Auto);
    (*model)(x);
    REQUIRE(batch_split_applies(*model, {x}));
    CHECK(max_abs_diff((*model)(x).data(), whole) <= 1e-5f);
  }
  SUBCASE("Sequential, also after a layer is added") {
    Sequential model({std::make_shared<Flatten>(Shape{4, 4, 2}), std::make_shared<Dense>(7, "relu")});
    randomise(model, 5);
    model.eval();
    const ag::Variable x(random_tensor({6, 4, 4, 2}, 6));
    model.set_batch_split(BatchSplit::Never);
    const Tensor whole = model(x).data();
    model.set_batch_split(BatchSplit::Auto);
    model(x);
    CHECK(max_abs_diff(model(x).data(), whole) <= 1e-6f);
    auto head = std::make_shared<Dense>(3, "softmax");
    model.add(head);
    randomise(*head, 9);
    model.set_batch_split(BatchSplit::Never);
    const Tensor whole_head = model(x).data();
    model.set_batch_split(BatchSplit::Auto);
    CHECK(max_abs_diff(model(x).data(), whole_head) <= 1e-6f);
    CHECK(max_abs_diff(model(x).data(), whole_head) <= 1e-6f);
  }
}

TEST_CASE("batch split runs only where samples are independent and the layers are petal's own") {
  ThreadsRestorer restore;
  set_num_threads(2);
  auto model = two_headed_model();
  model->eval();
  const ag::Variable image(random_tensor({4, 9, 7, 3}, 1)), extra(random_tensor({4, 4}, 2));
  {
    ag::NoGradGuard no_grad;
    CHECK(batch_split_applies(*model, {image, extra}));
    // A batch with fewer samples than threads, or mismatched batches.
    CHECK_FALSE(batch_split_applies(*model, {ag::Variable(random_tensor({1, 9, 7, 3}, 3)), ag::Variable(random_tensor({1, 4}, 4))}));
    CHECK_FALSE(batch_split_applies(*model, {image, ag::Variable(random_tensor({3, 4}, 4))}));
    // Any layer in training mode (batch statistics mix the samples).
    model->get_layer("batch_normalization")->train();
    CHECK_FALSE(batch_split_applies(*model, {image, extra}));
    model->eval();
    {
      TrainingScope training(true);
      CHECK_FALSE(batch_split_applies(*model, {image, extra}));
    }
    set_num_threads(1);
    CHECK_FALSE(batch_split_applies(*model, {image, extra}));
    set_num_threads(2);
  }
  {
    // A subclass of a built-in layer may keep state: not split by default.
    struct CountingDense : Dense {
      using Dense::Dense;
    };
    Sequential model2({std::make_shared<Flatten>(Shape{4}), std::make_shared<CountingDense>(3)});
    model2.eval();
    ag::NoGradGuard no_grad;
    const ag::Variable v(random_tensor({4, 4}, 5));
    CHECK_FALSE(batch_split_applies(model2, {v}));
    CHECK(batch_split_applies(model2, {v}, /*user_layers=*/true));
  }
  // Grad mode on: the tape must see one graph.
  CHECK_FALSE(batch_split_applies(*model, {image, extra}));
}

// Throws from forward on the slice that holds a negative first value.
class ThrowOnNegative : public Module {
 public:
  ThrowOnNegative() : Module("ThrowOnNegative", "throw_on_negative", "") {}

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override {
    if (x.data().to_vector<float>()[0] < 0.0f) throw ValueError("negative first value");
    return x;
  }
};

TEST_CASE("a split run's error reaches the caller") {
  ThreadsRestorer restore;
  set_num_threads(2);
  Sequential model({std::make_shared<Flatten>(Shape{3}), std::make_shared<ThrowOnNegative>()});
  model.eval();
  ag::NoGradGuard no_grad;
  const ag::Variable x(from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {4, 3}));
  // A layer class of the user's own: split only when the user says so.
  CHECK_FALSE(batch_split_applies(model, {x}));
  REQUIRE(batch_split_applies(model, {x}, /*user_layers=*/true));
  model.set_batch_split(BatchSplit::Always);
  model(x);
  CHECK(max_abs_diff(model(x).data(), x.data()) == 0.0f);
  // The second half's first value is negative: only its slice throws.
  const ag::Variable bad(from_vector<float>({1, 2, 3, 4, 5, 6, -7, 8, 9, 10, 11, 12}, {4, 3}));
  CHECK_THROWS_WITH_AS(model(bad), doctest::Contains("negative first value"), ValueError);
}
