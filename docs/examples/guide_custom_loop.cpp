// docs/guide.md, "A custom training loop": forward in training mode, loss,
// backward, gradient clipping, an optimizer holding its parameters, a
// learning-rate schedule, metrics, and evaluation without the tape.
#include <cmath>
#include <cstdio>

#include <petal.hpp>

#include "toy_data.hpp"

using namespace petal;

int main() {
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };
  auto [x_train, y_train] = guide::toy_points(1200, 16, 4, /*seed=*/1, /*noise=*/1.2);
  auto [x_test, y_test] = guide::toy_points(300, 16, 4, /*seed=*/2, /*noise=*/1.2);

  // [guide:custom_loop_setup]
  // Logits out (no softmax): the loss takes them directly.
  auto inputs = nn::Input({16});
  auto h = nn::layer<nn::Dense>(64, "relu")(inputs);
  h = nn::layer<nn::Dropout>(0.2)(h);
  auto logits = nn::layer<nn::Dense>(4)(h);
  auto model = std::make_shared<nn::Model>(inputs, logits, "mlp");

  const int epochs = 5;
  nn::TensorBatchSource train(x_train, y_train, /*batch_size=*/32, /*shuffle=*/true, /*seed=*/0);
  const std::int64_t total_steps = epochs * train.steps_per_epoch();

  // The optimizer holds the parameters it updates; the schedule gives the
  // learning rate of each step (evaluated at optimizer.iterations()).
  std::vector<ag::Variable> params = model->trainable_parameters();
  nn::Adam optimizer(params, /*learning_rate=*/1e-2);
  optimizer.set_schedule(std::make_shared<nn::CosineDecay>(1e-2, total_steps));
  const nn::Loss loss_fn = nn::Loss::sparse_categorical_crossentropy(/*from_logits=*/true);
  // [/guide:custom_loop_setup]

  double first_loss = -1, last_loss = 0;
  // [guide:custom_loop_train]
  for (int epoch = 0; epoch < epochs; ++epoch) {
    train.begin_epoch(epoch);
    nn::Mean mean_loss;
    nn::Accuracy accuracy;
    double largest_norm = 0;
    while (std::optional<nn::Batch> batch = train.next()) {
      optimizer.zero_grad();
      ag::Variable out = (*model)(ag::Variable(batch->x), /*training=*/true);  // dropout on
      ag::Variable loss = loss_fn(out, batch->y, /*output_is_logits=*/true);
      loss.backward();
      // Rescales the gradients in place when their total norm is above 1.
      largest_norm = std::max(largest_norm, nn::clip_grad_norm(params, /*max_norm=*/1.0));
      optimizer.step();

      mean_loss.update(loss.data().item<float>(), static_cast<double>(batch->x.size(0)));
      accuracy.update(out.data(), batch->y);
    }
    std::printf("epoch %d  loss %.4f  accuracy %.3f  largest grad norm %.2f  lr %.5f\n", epoch + 1,
                mean_loss.result(), accuracy.result(), largest_norm, optimizer.learning_rate());
    // [/guide:custom_loop_train]
    if (first_loss < 0) first_loss = mean_loss.result();
    last_loss = mean_loss.result();
    // [guide:custom_loop_train]
  }
  // [/guide:custom_loop_train]

  // [guide:custom_loop_eval]
  // Inference: a direct call runs in inference mode (dropout off); NoGradGuard
  // records no tape.
  ag::NoGradGuard no_grad;
  Tensor test_logits = (*model)(ag::Variable(x_test)).data();
  nn::Accuracy test_accuracy;
  test_accuracy.update(test_logits, y_test);
  std::printf("test accuracy %.3f\n", test_accuracy.result());
  // [/guide:custom_loop_eval]

  check(last_loss < 0.5 * first_loss, "loss at least halves");
  check(test_accuracy.result() > 0.9, "test accuracy above 0.9");
  check(optimizer.iterations() == total_steps, "one optimizer step per batch");
  check(std::abs(optimizer.learning_rate()) < 1e-9, "the cosine schedule ends at 0");
  return ok ? 0 : 1;
}
