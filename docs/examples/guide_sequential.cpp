// docs/guide.md, "Your first model": a Sequential classifier trained with
// compile/fit/evaluate/predict on in-memory tensors.
#include <cstdio>
#include <iostream>

#include "toy_data.hpp"

// [guide:sequential_includes]
#include <petal.hpp>

using namespace petal;
// [/guide:sequential_includes]

int main() {
  // [guide:sequential_data]
  // 3 classes of points in 4-D: x float32 [N, 4], y int64 class indices [N].
  auto [x_train, y_train] = guide::toy_points(1200, 4, 3, /*seed=*/1);
  auto [x_test, y_test] = guide::toy_points(300, 4, 3, /*seed=*/2);
  // [/guide:sequential_data]

  // [guide:sequential_model]
  auto model = std::make_shared<nn::Sequential>("blobs");
  model->add(nn::layer<nn::InputLayer>(Shape{4}));  // the input shape, without the batch axis
  model->add(nn::layer<nn::Dense>(32, "relu"));
  model->add(nn::layer<nn::Dense>(32, "relu"));
  model->add(nn::layer<nn::Dense>(3, "softmax"));
  std::cout << model->summary();
  // [/guide:sequential_model]

  // [guide:sequential_fit]
  nn::Trainer trainer(model);
  trainer.compile(std::make_shared<nn::Adam>(1e-2), nn::Loss::sparse_categorical_crossentropy(),
                  {"accuracy"});

  nn::TensorBatchSource train(x_train, y_train, /*batch_size=*/32, /*shuffle=*/true, /*seed=*/0);
  nn::TensorBatchSource test(x_test, y_test, /*batch_size=*/100);
  nn::History history = trainer.fit(train, {.epochs = 5, .validation = &test});

  nn::Logs scores = trainer.evaluate(test);
  std::printf("test loss %.3f, test accuracy %.3f\n", scores["loss"], scores["accuracy"]);

  Tensor probabilities = trainer.predict(x_test.slice(0, 0, 4));  // [4, 3], rows sum to 1
  std::vector<std::int64_t> predicted = nn::predicted_classes(probabilities);
  // [/guide:sequential_fit]

  // The example's own checks.
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };
  check(model->count_params() == (4 * 32 + 32) + (32 * 32 + 32) + (32 * 3 + 3), "parameter count");
  check(history["loss"].size() == 5 && history["loss"].back() < history["loss"].front(), "loss falls");
  check(scores["accuracy"] > 0.9, "test accuracy above 0.9");
  check(probabilities.shape() == Shape({4, 3}), "predict shape");
  const auto p = probabilities.to_vector<float>();
  check(std::abs(p[0] + p[1] + p[2] - 1.0f) < 1e-5f, "probabilities sum to 1");
  const auto truth = y_test.slice(0, 0, 4).to_vector<std::int64_t>();
  int right = 0;
  for (std::size_t i = 0; i < 4; ++i) right += predicted[i] == truth[i];
  check(right >= 3, "predictions match the labels");
  return ok ? 0 : 1;
}
