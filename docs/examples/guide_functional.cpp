// docs/guide.md, "The functional API": a two-branch model, a model with a
// shared layer, two inputs and two outputs, and summary()'s "Connected to".
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include <petal.hpp>

#include "toy_data.hpp"

using namespace petal;

int main() {
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };
  auto [x_train, y_train] = guide::toy_points(1200, 16, 3, /*seed=*/1);
  auto [x_test, y_test] = guide::toy_points(300, 16, 3, /*seed=*/2);

  // [guide:functional_two_branch]
  auto features = nn::Input({16}, "features");
  // Two branches read the same input...
  auto wide = nn::layer<nn::Dense>(8, "relu")(features);
  auto deep = nn::layer<nn::Dense>(32, "relu")(features);
  deep = nn::layer<nn::Dense>(32, "relu")(deep);
  // ...and meet again: Concatenate joins them along the last axis.
  auto merged = nn::layer<nn::Concatenate>()({wide, deep});
  auto probabilities = nn::layer<nn::Dense>(3, "softmax")(merged);

  auto model = std::make_shared<nn::Model>(features, probabilities, "wide_and_deep");
  std::cout << model->summary();
  // [/guide:functional_two_branch]

  // [guide:functional_fit]
  nn::Trainer trainer(model);
  trainer.compile(std::make_shared<nn::Adam>(1e-2), nn::Loss::sparse_categorical_crossentropy());
  nn::TensorBatchSource train(x_train, y_train, 32, /*shuffle=*/true, /*seed=*/0);
  nn::TensorBatchSource test(x_test, y_test, 100);
  trainer.fit(train, {.epochs = 3, .verbose = nn::Verbosity::Quiet});
  std::printf("test accuracy %.3f\n", trainer.evaluate(test)["accuracy"]);
  // [/guide:functional_fit]
  {
    const std::string s = model->summary();
    check(s.find("Connected to") != std::string::npos, "summary has Connected to");
    check(s.find("concatenate[0][0]") != std::string::npos, "the head is connected to the concatenation");
    nn::TensorBatchSource again(x_test, y_test, 100);
    check(trainer.evaluate(again)["accuracy"] > 0.9, "two-branch test accuracy above 0.9");
  }

  // [guide:functional_shared]
  // Two inputs, one encoder: calling the same layer twice shares its weights.
  auto left = nn::Input({16}, "left");
  auto right = nn::Input({16}, "right");
  auto encoder = nn::layer<nn::Dense>(8, "tanh", nn::DenseOptions{.name = "encoder"});
  auto a = encoder(left);   // encoder[0][0]
  auto b = encoder(right);  // encoder[1][0]

  // Two outputs: the class of the left input, and whether both are of one class.
  auto left_class = nn::layer<nn::Dense>(3, "softmax", nn::DenseOptions{.name = "left_class"})(a);
  auto difference = nn::layer<nn::Subtract>()({a, b});
  auto squared = nn::layer<nn::Multiply>()({difference, difference});
  auto same = nn::layer<nn::Dense>(2, "softmax", nn::DenseOptions{.name = "same"})(squared);

  auto siamese = std::make_shared<nn::Model>(std::vector{left, right}, std::vector{left_class, same}, "siamese");
  std::cout << siamese->summary();
  // [/guide:functional_shared]
  {
    const std::string s = siamese->summary();
    check(s.find("encoder[1][0]") != std::string::npos, "summary shows the encoder's second call");
    check(siamese->count_params() == (16 * 8 + 8) + (8 * 3 + 3) + (8 * 2 + 2), "shared encoder counted once");
    check(siamese->output_shapes() == std::vector<Shape>{{3}, {2}}, "two outputs");
  }

  // [guide:functional_multi_train]
  // Trainer::fit takes models with one input and one output; any other graph
  // trains with a few lines on the tape (section "A custom training loop").
  // Pairs: rows of x_train against the same rows shifted by one.
  const std::int64_t n = x_train.size(0);
  Tensor x_left = x_train.slice(0, 0, n - 1), x_right = x_train.slice(0, 1, n);
  Tensor class_left = y_train.slice(0, 0, n - 1).contiguous();
  const auto yl = class_left.to_vector<std::int64_t>(), yr = y_train.slice(0, 1, n).to_vector<std::int64_t>();
  std::vector<std::int64_t> pair_same(yl.size());
  for (std::size_t i = 0; i < yl.size(); ++i) pair_same[i] = yl[i] == yr[i];
  Tensor same_target = from_vector(pair_same);

  nn::Adam optimizer(siamese->trainable_parameters(), 2e-2);
  const nn::Loss cross_entropy = nn::Loss::sparse_categorical_crossentropy();
  for (int step = 0; step < 200; ++step) {
    optimizer.zero_grad();
    std::vector<ag::Variable> outputs =
        (*siamese)({ag::Variable(x_left), ag::Variable(x_right)}, /*training=*/true);
    ag::Variable loss = cross_entropy(outputs[0], class_left, /*output_is_logits=*/false) +
                        cross_entropy(outputs[1], same_target, /*output_is_logits=*/false);
    loss.backward();
    optimizer.step();
    if (step % 50 == 0 || step == 199) std::printf("step %3d  loss %.3f\n", step, loss.data().item<float>());
  }
  // [/guide:functional_multi_train]
  {
    ag::NoGradGuard no_grad;
    const auto outputs = (*siamese)({ag::Variable(x_left), ag::Variable(x_right)});
    const auto predicted_class = nn::predicted_classes(outputs[0].data());
    const auto predicted_same = nn::predicted_classes(outputs[1].data());
    std::size_t right_class = 0, right_same = 0;
    for (std::size_t i = 0; i < yl.size(); ++i) {
      right_class += predicted_class[i] == yl[i];
      right_same += predicted_same[i] == pair_same[i];
    }
    const double class_accuracy = static_cast<double>(right_class) / static_cast<double>(yl.size());
    const double same_accuracy = static_cast<double>(right_same) / static_cast<double>(yl.size());
    std::printf("left_class accuracy %.3f, same accuracy %.3f\n", class_accuracy, same_accuracy);
    check(class_accuracy > 0.9, "left_class accuracy above 0.9");
    check(same_accuracy > 0.8, "same accuracy above 0.8");
  }
  return ok ? 0 : 1;
}
