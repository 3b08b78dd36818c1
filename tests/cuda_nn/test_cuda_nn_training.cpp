// nn on a real GPU: the same models trained from the same initial weights on
// the CPU and on cuda:0 give the same losses within float tolerance (dense,
// conv + BN + depthwise + pooling, SGD momentum / Adam / clipping, AdamW /
// RMSprop / Adagrad), fit /
// evaluate / predict run on the device with host-side metrics, the feature
// cache works from a device model, weights files round-trip through the
// host, and clip_grad_norm clips device gradients as the CPU does. Skipped (exit 77) without a CUDA device, by cuda_test_main.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <unistd.h>

#include "kernels/cuda/cuda_runtime_api.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

using ModelFactory = std::shared_ptr<Sequential> (*)();

std::shared_ptr<Sequential> dense_model() {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{12}), std::make_shared<Dense>(32, "relu"), std::make_shared<Dense>(16, "tanh"),
      std::make_shared<Dense>(4, "softmax")});
}

// Dropout masks come from the host generator on every device: the same draws.
std::shared_ptr<Sequential> dropout_model() {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{12}), std::make_shared<Dense>(32, "relu"), std::make_shared<Dropout>(0.3),
      std::make_shared<Dense>(4, "softmax")});
}

std::shared_ptr<Sequential> conv_model() {
  ConvOptions same;
  same.padding = Padding::Same;
  ConvOptions strided = same;
  strided.strides = 2;
  strided.use_bias = false;
  DepthwiseConvOptions depthwise;
  depthwise.padding = Padding::Same;
  depthwise.use_bias = false;
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{12, 12, 3}), std::make_shared<Conv2D>(8, 3, strided),
      std::make_shared<BatchNormalization>(), std::make_shared<ReLU>(6.0),
      std::make_shared<DepthwiseConv2D>(3, depthwise), std::make_shared<BatchNormalization>(),
      std::make_shared<ReLU>(6.0), std::make_shared<Conv2D>(16, 1, same), std::make_shared<GlobalAveragePooling2D>(),
      std::make_shared<Dense>(4, "softmax")});
}

// Deterministic inputs and one-hot targets for `rows` samples.
Batch make_data(const Shape& sample_shape, std::int64_t rows, std::uint64_t seed) {
  Generator gen(seed);
  Shape shape{rows};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  Tensor x = normal(shape, 0.0, 1.0, gen);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(rows));
  for (auto& l : labels) l = static_cast<std::int64_t>(gen.uniform_int(4));
  return {x, one_hot(from_vector(labels), 4)};
}

struct Run {
  std::vector<double> losses;
  std::vector<std::vector<float>> weights;
};

// `steps` train_step calls on the whole batch, on `device`, from the weights
// manual_seed(seed) gives.
Run train(ModelFactory factory, Device device, std::shared_ptr<Optimizer> optimizer, const Batch& data, int steps) {
  reset_layer_names();
  manual_seed(7);
  auto model = factory();
  model->to(device);
  Trainer trainer(model);
  trainer.compile(std::move(optimizer), Loss::categorical_crossentropy());
  model->train();
  Run run;
  for (int i = 0; i < steps; ++i) run.losses.push_back(trainer.train_step(data));
  for (const auto& w : model->weights()) {
    CHECK(w.variable.device() == device);
    run.weights.push_back(w.variable.data().to_vector<float>());
  }
  return run;
}

void check_close(const Run& cpu, const Run& gpu, double tolerance) {
  REQUIRE(cpu.losses.size() == gpu.losses.size());
  for (std::size_t i = 0; i < cpu.losses.size(); ++i) {
    INFO("step " << i << ": cpu " << cpu.losses[i] << ", cuda " << gpu.losses[i]);
    CHECK(std::isfinite(gpu.losses[i]));
    CHECK(std::abs(cpu.losses[i] - gpu.losses[i]) <= tolerance * (1.0 + std::abs(cpu.losses[i])));
  }
  CHECK(cpu.losses.back() < cpu.losses.front());  // it learned something
  REQUIRE(cpu.weights.size() == gpu.weights.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < cpu.weights.size(); ++i)
    for (std::size_t j = 0; j < cpu.weights[i].size(); ++j)
      worst = std::max(worst, static_cast<double>(std::abs(cpu.weights[i][j] - gpu.weights[i][j])));
  INFO("largest weight difference " << worst);
  CHECK(worst <= 10 * tolerance);
}

}  // namespace

TEST_CASE("a dense model trains on cuda:0 like on the CPU (SGD momentum, Adam, clipping, weight decay, dropout)") {
  const Batch data = make_data({12}, 48, 11);
  check_close(train(dense_model, Device::cpu(), std::make_shared<SGD>(0.1, 0.9), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<SGD>(0.1, 0.9), data, 8), 1e-4);
  check_close(train(dense_model, Device::cpu(), std::make_shared<SGD>(0.1, 0.9, true), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<SGD>(0.1, 0.9, true), data, 8), 1e-4);
  check_close(train(dense_model, Device::cpu(), std::make_shared<Adam>(1e-2), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<Adam>(1e-2), data, 8), 1e-4);
  OptimizerOptions clip;
  clip.global_clipnorm = 0.5;
  clip.weight_decay = 0.01;
  check_close(train(dense_model, Device::cpu(), std::make_shared<Adam>(1e-2, AdamOptions{}, clip), data, 6),
              train(dense_model, Device::cuda(), std::make_shared<Adam>(1e-2, AdamOptions{}, clip), data, 6), 1e-4);
  check_close(train(dropout_model, Device::cpu(), std::make_shared<SGD>(0.1, 0.9), data, 8),
              train(dropout_model, Device::cuda(), std::make_shared<SGD>(0.1, 0.9), data, 8), 1e-4);
  OptimizerOptions clip_value;
  clip_value.clipvalue = 0.05;
  check_close(train(dense_model, Device::cpu(), std::make_shared<SGD>(0.1, 0.0, false, clip_value), data, 6),
              train(dense_model, Device::cuda(), std::make_shared<SGD>(0.1, 0.0, false, clip_value), data, 6), 1e-4);
}

TEST_CASE("a dense model trains on cuda:0 like on the CPU with AdamW, RMSprop and Adagrad") {
  const Batch data = make_data({12}, 48, 12);
  check_close(train(dense_model, Device::cpu(), std::make_shared<AdamW>(1e-2, 0.05), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<AdamW>(1e-2, 0.05), data, 8), 1e-4);
  check_close(train(dense_model, Device::cpu(), std::make_shared<RMSprop>(1e-3), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<RMSprop>(1e-3), data, 8), 1e-4);
  const RMSpropOptions centered{.momentum = 0.9, .centered = true};
  check_close(train(dense_model, Device::cpu(), std::make_shared<RMSprop>(1e-3, centered), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<RMSprop>(1e-3, centered), data, 8), 1e-4);
  check_close(train(dense_model, Device::cpu(), std::make_shared<Adagrad>(0.05), data, 8),
              train(dense_model, Device::cuda(), std::make_shared<Adagrad>(0.05), data, 8), 1e-4);
}

TEST_CASE("a conv + batch norm + depthwise model trains on cuda:0 like on the CPU") {
  const Batch data = make_data({12, 12, 3}, 16, 12);
  check_close(train(conv_model, Device::cpu(), std::make_shared<SGD>(0.05, 0.9), data, 6),
              train(conv_model, Device::cuda(), std::make_shared<SGD>(0.05, 0.9), data, 6), 5e-4);
}

TEST_CASE("fit, evaluate and predict on cuda:0 match the CPU; predictions come back in host memory") {
  const Batch data = make_data({12}, 40, 13);
  std::vector<double> losses[2], val_accuracy[2];
  Tensor predictions[2];
  for (int on_gpu = 0; on_gpu < 2; ++on_gpu) {
    reset_layer_names();
    manual_seed(9);
    auto model = dense_model();
    model->to(on_gpu ? Device::cuda() : Device::cpu());
    Trainer trainer(model);
    trainer.compile(std::make_shared<Adam>(1e-2), Loss::categorical_crossentropy(), {"accuracy"});
    TensorBatchSource train_source(data.x, data.y, 8, true, 3);
    TensorBatchSource val_source(data.x, data.y, 16);
    FitOptions options;
    options.epochs = 3;
    options.validation = &val_source;
    options.verbose = Verbosity::Quiet;
    History h = trainer.fit(train_source, options);
    losses[on_gpu] = h["loss"];
    val_accuracy[on_gpu] = h["val_accuracy"];
    predictions[on_gpu] = trainer.predict(data.x, 16);
    CHECK(predictions[on_gpu].device() == Device::cpu());
  }
  for (std::size_t i = 0; i < losses[0].size(); ++i) CHECK(losses[1][i] == doctest::Approx(losses[0][i]).epsilon(1e-4));
  // Float sums may differ in the last bits: allow one of the 40 predictions to flip on a near tie.
  for (std::size_t i = 0; i < val_accuracy[0].size(); ++i)
    CHECK(std::abs(val_accuracy[1][i] - val_accuracy[0][i]) <= 1.0 / 40 + 1e-9);
  const auto a = predictions[0].to_vector<float>(), b = predictions[1].to_vector<float>();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-4));
}

TEST_CASE("the feature cache runs the frozen prefix on cuda:0 and keeps the features in host memory") {
  const Batch data = make_data({12, 12, 3}, 10, 14);
  Tensor features[2];
  for (int on_gpu = 0; on_gpu < 2; ++on_gpu) {
    reset_layer_names();
    manual_seed(5);
    auto model = conv_model();
    for (std::size_t i = 0; i + 1 < model->layers().size(); ++i) model->layers()[i]->set_trainable(false);
    model->to(on_gpu ? Device::cuda() : Device::cpu());
    const std::size_t prefix = frozen_prefix_length(*model);
    REQUIRE(prefix == model->layers().size() - 1);
    TensorBatchSource source(data.x, data.y, 4);
    CachedFeatures f = cache_features(*model, prefix, source);
    CHECK(f.features.device() == Device::cpu());
    features[on_gpu] = f.features;
    CHECK(head_of(*model, prefix)->device() == (on_gpu ? Device::cuda() : Device::cpu()));
  }
  const auto a = features[0].to_vector<float>(), b = features[1].to_vector<float>();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-4));
}

TEST_CASE("weights saved from a cuda:0 model load into a cuda:0 model bit for bit") {
  const fs::path file = fs::temp_directory_path() / ("petal_cuda_nn_" + std::to_string(::getpid()) + ".safetensors");
  reset_layer_names();
  manual_seed(1);
  auto source = conv_model();
  source->to(Device::cuda());
  save_weights(*source, file);
  reset_layer_names();
  manual_seed(2);
  auto target = conv_model();
  target->to(Device::cuda());
  load_weights(*target, file);
  const auto a = source->weights(), b = target->weights();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i].variable.device() == Device::cuda());
    CHECK(a[i].variable.data().to_vector<float>() == b[i].variable.data().to_vector<float>());
  }
  fs::remove(file);
  cuda::synchronize();
}

TEST_CASE("clip_grad_norm on cuda:0 gradients matches the CPU (2-norm and inf-norm, mixed devices)") {
  for (double norm_type : {2.0, std::numeric_limits<double>::infinity()}) {
    Generator gen(21);
    std::vector<ag::Variable> host, device;
    for (std::int64_t n : {1, 1000, 70000}) {
      const Tensor g = normal({n}, 0.0, 1.0, gen);
      const Device where = n == 1 ? Device::cpu() : Device::cuda(0);  // one parameter stays on the host
      host.emplace_back(zeros({n}), true);
      host.back().set_grad(g.clone());
      device.emplace_back(zeros({n}, DType::Float32, where), true);
      device.back().set_grad(g.to(where).clone());
    }
    const double want = clip_grad_norm(host, 0.5, norm_type);
    const double got = clip_grad_norm(device, 0.5, norm_type);
    CHECK(got == doctest::Approx(want).epsilon(1e-9));
    for (std::size_t i = 0; i < host.size(); ++i) {
      CHECK(device[i].grad().device() == (i == 0 ? Device::cpu() : Device::cuda(0)));
      const std::vector<float> a = host[i].grad().to_vector<float>(), b = device[i].grad().to_vector<float>();
      for (std::size_t k = 0; k < a.size(); ++k) REQUIRE(b[k] == doctest::Approx(a[k]).epsilon(1e-6));
    }
  }
}
