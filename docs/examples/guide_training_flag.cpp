// docs/guide.md, "The training flag": Keras's rules for when Dropout drops
// and BatchNormalization uses batch statistics.
#include <cstdio>

#include <petal.hpp>

using namespace petal;

int main() {
  bool ok = true;
  auto check = [&](bool condition, const char* what) {
    if (!condition) std::fprintf(stderr, "FAILED: %s\n", what), ok = false;
  };

  // [guide:training_flag]
  auto inputs = nn::Input({1000});
  auto outputs = nn::layer<nn::Dropout>(0.5, /*seed=*/1)(inputs);
  auto model = std::make_shared<nn::Model>(inputs, outputs, "dropout_only");
  const ag::Variable x(ones({1, 1000}));
  // The fraction of the inputs the model dropped in one call.
  auto dropped = [&](const ag::Variable& y) {
    std::vector<float> v = y.data().to_vector<float>();
    return static_cast<double>(std::count(v.begin(), v.end(), 0.0f)) / static_cast<double>(v.size());
  };

  std::printf("new model, direct call:   %.2f\n", dropped((*model)(x)));         // 0.00: inference
  std::printf("training=true:            %.2f\n", dropped((*model)(x, true)));   // ~0.50
  model->train();
  std::printf("after train():            %.2f\n", dropped((*model)(x)));         // ~0.50
  std::printf("after train(), =false:    %.2f\n", dropped((*model)(x, false)));  // 0.00: the call wins
  model->eval();
  std::printf("after eval():             %.2f\n", dropped((*model)(x)));         // 0.00
  // [/guide:training_flag]

  check(dropped((*model)(x)) == 0.0, "inference by default");
  const double d = dropped((*model)(x, true));
  check(d > 0.4 && d < 0.6, "training=true drops about half");
  model->train();
  check(dropped((*model)(x)) > 0.4, "train() makes calls train");
  check(dropped((*model)(x, false)) == 0.0, "an explicit training=false wins over train()");
  model->eval();
  check(!model->training(), "eval() sets inference mode");

  // [guide:training_flag_fit]
  // fit() trains; evaluate() and predict() infer; afterwards the model is
  // back in the mode it had.
  auto bn_inputs = nn::Input({4});
  auto bn_outputs = nn::layer<nn::Dense>(2, "softmax")(nn::layer<nn::BatchNormalization>()(bn_inputs));
  auto bn_model = std::make_shared<nn::Model>(bn_inputs, bn_outputs, "with_bn");
  nn::Trainer trainer(bn_model);
  trainer.compile(std::make_shared<nn::SGD>(0.1), nn::Loss::sparse_categorical_crossentropy());
  Generator gen(3);
  nn::TensorBatchSource data(uniform({64, 4}, 5.0, 6.0, gen), zeros({64}, DType::Int64), 16);
  trainer.fit(data, {.epochs = 1, .verbose = nn::Verbosity::Quiet});  // moving statistics move
  std::printf("training() after fit: %d\n", bn_model->training());           // 0
  // [/guide:training_flag_fit]

  check(!bn_model->training(), "fit leaves the model in inference mode");
  auto bn = std::dynamic_pointer_cast<nn::BatchNormalization>(bn_model->children()[1]);
  check(bn && bn->moving_mean().data().to_vector<float>()[0] > 0.0f, "fit updated the moving mean");
  const auto before = bn->moving_mean().data().to_vector<float>();
  trainer.evaluate(data);
  trainer.predict(data);
  check(bn->moving_mean().data().to_vector<float>() == before, "evaluate and predict leave the statistics alone");
  return ok ? 0 : 1;
}
