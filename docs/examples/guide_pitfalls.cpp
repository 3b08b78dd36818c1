// docs/guide.md, "Pitfalls": each one reproduced, with its remedy.
#include <cstdio>
#include <iostream>
#include <string>

#include <petal.hpp>

#include "toy_data.hpp"

using namespace petal;

namespace {

bool ok = true;
void check(bool condition, const char* what) {
  if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
}

// Features far from 0 (mean 50, stddev 5), as raw pixel values are: what
// BatchNormalization's moving statistics must learn.
guide::ToyData shifted(std::uint64_t seed) {
  auto [x, y] = guide::toy_points(640, 8, 3, seed, /*noise=*/0.8);
  Tensor x_shifted = ops::add_scalar(ops::mul_scalar(x, 5.0), 50.0);
  return {x_shifted, y};
}

// [guide:pitfall_bn_model]
std::shared_ptr<nn::Model> normalized_classifier(double momentum) {
  auto inputs = nn::Input({8});
  auto h = nn::layer<nn::BatchNormalization>(nn::BatchNormOptions{.momentum = momentum})(inputs);
  h = nn::layer<nn::Dense>(16, "relu")(h);
  auto outputs = nn::layer<nn::Dense>(3, "softmax")(h);
  return std::make_shared<nn::Model>(inputs, outputs);
}
// [/guide:pitfall_bn_model]

struct Scores {
  double fit_accuracy, evaluated_train_accuracy, test_accuracy;
};

Scores train_and_evaluate(double momentum, int epochs) {
  auto [x, y] = shifted(1);
  auto [x_test, y_test] = shifted(2);
  // [guide:pitfall_bn_run]
  auto model = normalized_classifier(momentum);
  nn::Trainer trainer(model);
  trainer.compile(std::make_shared<nn::Adam>(1e-2), nn::Loss::sparse_categorical_crossentropy());
  nn::TensorBatchSource train(x, y, 32, /*shuffle=*/true, /*seed=*/0);  // 20 steps per epoch
  nn::TensorBatchSource test(x_test, y_test, 128);
  nn::History history = trainer.fit(train, {.epochs = epochs, .verbose = nn::Verbosity::Quiet});
  nn::TensorBatchSource train_again(x, y, 128);
  double evaluated = trainer.evaluate(train_again)["accuracy"];  // the training data, in inference mode
  double test_accuracy = trainer.evaluate(test)["accuracy"];
  std::printf("momentum %.2f, %3d steps: fit's accuracy %.3f, evaluate(train) %.3f, evaluate(test) %.3f\n",
              momentum, epochs * 20, history["accuracy"].back(), evaluated, test_accuracy);
  // [/guide:pitfall_bn_run]
  return {history["accuracy"].back(), evaluated, test_accuracy};
}

}  // namespace

int main() {
  {
    // [guide:pitfall_bn]
    Scores early = train_and_evaluate(/*momentum=*/0.99, /*epochs=*/3);  // Keras's default, 60 steps
    Scores longer = train_and_evaluate(/*momentum=*/0.99, /*epochs=*/30);  // remedy 1: more steps
    Scores lower = train_and_evaluate(/*momentum=*/0.9, /*epochs=*/3);     // remedy 2: a lower momentum
    // [/guide:pitfall_bn]
    check(early.fit_accuracy > 0.95 && early.evaluated_train_accuracy < 0.8 && early.test_accuracy < 0.8,
          "the symptom: good while fitting, poor when evaluated");
    check(longer.test_accuracy > 0.95 && longer.evaluated_train_accuracy > 0.95, "more steps cure it");
    check(lower.test_accuracy > 0.95 && lower.evaluated_train_accuracy > 0.95, "a lower momentum cures it");
  }

  {
    // [guide:pitfall_uint8]
    // uint8 images straight into fit(): refused.
    Tensor images = zeros({8, 4, 4, 3}, DType::UInt8);
    nn::TensorBatchSource source(images, zeros({8}, DType::Int64), 4);
    auto inputs = nn::Input({4, 4, 3});
    auto outputs = nn::layer<nn::Dense>(2, "softmax")(nn::layer<nn::Flatten>()(inputs));
    nn::Trainer trainer(std::make_shared<nn::Model>(inputs, outputs, "pixels"));
    trainer.compile(std::make_shared<nn::SGD>(), nn::Loss::sparse_categorical_crossentropy());
    try {
      trainer.fit(source);
    } catch (const DTypeError& e) {
      std::cout << e.what() << "\n";
    }
    // [/guide:pitfall_uint8]
    bool threw = false;
    try {
      trainer.fit(source, {.verbose = nn::Verbosity::Quiet});
    } catch (const DTypeError&) {
      threw = true;
    }
    check(threw, "uint8 inputs are refused");
  }

  {
    // [guide:pitfall_shared_ptr]
    nn::Dense on_the_stack(4);
    try {
      on_the_stack(nn::Input({3}));
    } catch (const ValueError& e) {
      std::cout << e.what() << "\n";
    }
    auto owned = nn::layer<nn::Dense>(4);  // or std::make_shared<nn::Dense>(4)
    nn::SymbolicTensor y = owned(nn::Input({3}));
    // [/guide:pitfall_shared_ptr]
    check(y.shape() == Shape({4}), "a layer owned by a shared_ptr works");
  }

  {
    // [guide:pitfall_names]
    auto inputs = nn::Input({3});
    auto h = nn::layer<nn::Dense>(4, "relu", nn::DenseOptions{.name = "hidden"})(inputs);
    auto outputs = nn::layer<nn::Dense>(2, "softmax", nn::DenseOptions{.name = "hidden"})(h);
    try {
      nn::Model model(inputs, outputs);
    } catch (const ValueError& e) {
      std::cout << e.what() << "\n";
    }
    // [/guide:pitfall_names]
    bool threw = false;
    try {
      nn::Model model(inputs, outputs);
    } catch (const ValueError&) {
      threw = true;
    }
    check(threw, "duplicate names are refused");
  }

  {
    // [guide:pitfall_lazy_parameters]
    // A module built lazily has no parameters before its first call.
    auto model = std::make_shared<nn::Sequential>("lazy");
    model->add(nn::layer<nn::Dense>(8, "relu"));
    model->add(nn::layer<nn::Dense>(2));
    std::printf("parameters before the first call: %zu\n", model->trainable_parameters().size());  // 0
    model->build(Shape{4});  // or run one batch through it first
    nn::SGD optimizer(model->trainable_parameters(), 0.1);                                        // 4 now
    // [/guide:pitfall_lazy_parameters]
    check(optimizer.parameters().size() == 4, "the optimizer holds the 4 parameters");
  }

  {
    // [guide:pitfall_training_default]
    // A custom loop that forgets training=true: BatchNormalization normalizes
    // with its moving statistics (which never move) and Dropout never drops.
    auto inputs = nn::Input({2});
    auto bn = nn::layer<nn::BatchNormalization>();
    auto model = std::make_shared<nn::Model>(inputs, bn(inputs), "forgetful");
    ag::Variable batch(full({16, 2}, 3.0));
    (*model)(batch);                      // inference: nothing learned about the data
    (*model)(batch, /*training=*/true);   // batch statistics; moving_mean moves towards 3
    std::cout << "moving_mean " << bn->moving_mean().data() << "\n";  // 0.03 = 0.01 * 3 after one step
    // [/guide:pitfall_training_default]
    check(std::abs(bn->moving_mean().data().to_vector<float>()[0] - 0.03f) < 1e-6f, "one training call moved the mean");
  }
  return ok ? 0 : 1;
}
