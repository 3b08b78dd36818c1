// docs/guide.md, "Subclassing Module": a residual block and a small network
// written as classes, their children declared in the constructor and built
// on the first call (no shapes computed by hand).
#include <cstdio>
#include <iostream>
#include <string>

#include <petal.hpp>

#include "toy_data.hpp"

using namespace petal;

// [guide:subclass_block]
// relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x)))))), with a 1x1 convolution
// as the shortcut so that the block may change the number of channels.
class ResidualBlock : public nn::Module {
 public:
  explicit ResidualBlock(std::int64_t filters, std::string name = "")
      : Module("ResidualBlock", "residual_block", std::move(name)) {
    const nn::ConvOptions same{.padding = nn::Padding::Same, .use_bias = false};
    conv1_ = add_child(nn::layer<nn::Conv2D>(filters, 3, same));
    bn1_ = add_child(nn::layer<nn::BatchNormalization>());
    conv2_ = add_child(nn::layer<nn::Conv2D>(filters, 3, same));
    bn2_ = add_child(nn::layer<nn::BatchNormalization>());
    shortcut_ = add_child(nn::layer<nn::Conv2D>(filters, 1));
  }

 protected:
  // The input's shape is only known here: each child builds its weights from
  // what reaches it on the first call.
  ag::Variable forward(const ag::Variable& x) override {
    ag::Variable h = ag::relu(bn1_(conv1_(x)));
    h = bn2_(conv2_(h));
    return ag::relu(shortcut_(x) + h);
  }

 private:
  nn::LayerPtr<nn::Conv2D> conv1_, conv2_, shortcut_;
  nn::LayerPtr<nn::BatchNormalization> bn1_, bn2_;
};
// [/guide:subclass_block]

// [guide:subclass_net]
class SmallResNet : public nn::Module {
 public:
  explicit SmallResNet(std::int64_t classes) : Module("SmallResNet", "small_res_net", "") {
    block1_ = add_child(nn::layer<ResidualBlock>(8));
    block2_ = add_child(nn::layer<ResidualBlock>(16));
    pool_ = add_child(nn::layer<nn::GlobalAveragePooling2D>());
    head_ = add_child(nn::layer<nn::Dense>(classes, "softmax"));
  }

 protected:
  ag::Variable forward(const ag::Variable& x) override { return head_(pool_(block2_(block1_(x)))); }

 private:
  nn::LayerPtr<ResidualBlock> block1_, block2_;
  nn::LayerPtr<nn::GlobalAveragePooling2D> pool_;
  nn::LayerPtr<nn::Dense> head_;
};
// [/guide:subclass_net]

int main() {
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };
  auto [x_train, y_train] = guide::toy_images(256, 8, /*seed=*/1);
  auto [x_test, y_test] = guide::toy_images(128, 8, /*seed=*/2);

  // [guide:subclass_use]
  auto net = std::make_shared<SmallResNet>(2);
  std::printf("before the first call: built %d, %lld parameters\n", net->built(),
              static_cast<long long>(net->count_params()));

  ag::Variable y = (*net)(ag::Variable(x_train.slice(0, 0, 4)));  // builds every child
  std::printf("after: output [%lld, %lld], %lld parameters\n", static_cast<long long>(y.size(0)),
              static_cast<long long>(y.size(1)), static_cast<long long>(net->count_params()));
  for (const nn::WeightRef& w : net->weights())
    if (w.path.starts_with("residual_block_1/")) std::cout << "  " << w.path << "\n";

  // A subclassed module is a Module like any other: fit it...
  nn::Trainer trainer(net);
  trainer.compile(std::make_shared<nn::Adam>(1e-2), nn::Loss::sparse_categorical_crossentropy());
  nn::TensorBatchSource train(x_train, y_train, 32, /*shuffle=*/true, /*seed=*/0);
  nn::TensorBatchSource test(x_test, y_test, 64);
  trainer.fit(train, {.epochs = 4, .verbose = nn::Verbosity::Quiet});
  std::printf("test accuracy %.3f\n", trainer.evaluate(test)["accuracy"]);

  // ...or call it on symbolic tensors inside a functional model.
  auto image = nn::Input({8, 8, 1}, "image");
  auto probabilities = nn::layer<SmallResNet>(2)(image);
  nn::Model wrapped(image, probabilities, "wrapped");
  // [/guide:subclass_use]

  check(y.shape() == Shape({4, 2}), "output shape");
  const std::int64_t block1 = (3 * 3 * 1 * 8) + 4 * 8 + (3 * 3 * 8 * 8) + 4 * 8 + (1 * 8 + 8);
  const std::int64_t block2 = (3 * 3 * 8 * 16) + 4 * 16 + (3 * 3 * 16 * 16) + 4 * 16 + (8 * 16 + 16);
  check(net->count_params() == block1 + block2 + (16 * 2 + 2), "parameter count");
  check(wrapped.count_params() == net->count_params(), "the wrapped copy has the same parameters");
  check(wrapped.weights().front().path == "small_res_net/residual_block/conv2d/kernel", "nested paths");
  nn::TensorBatchSource again(x_test, y_test, 64);
  check(trainer.evaluate(again)["accuracy"] > 0.9, "test accuracy above 0.9");
  return ok ? 0 : 1;
}
