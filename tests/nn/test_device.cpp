// nn on devices without a GPU: Module::to, Module::device, the Trainer on a
// model moved to the CPU, weights files from and into device models, batches
// in pinned memory and the --device checks. Device tensors here live on a
// fake "CUDA" backend whose memory is host memory (as in
// tests/core/test_storage_devices.cpp): it exercises every copy between
// devices, but no op runs on it (tests/cuda_nn trains on a real GPU).
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "core/error.hpp"
#include "core/storage.hpp"
#include "nn/nn.hpp"
#include "tests/fake_device.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

using test::CudaBackendScope;
using test::fake_backend;

std::shared_ptr<Sequential> small_mlp() {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{3}), std::make_shared<Dense>(4, "relu"), std::make_shared<Dense>(2, "softmax")});
}

std::vector<std::vector<float>> weight_values(const Module& m) {
  std::vector<std::vector<float>> out;
  for (const auto& w : m.weights()) out.push_back(w.variable.data().to_vector<float>());
  return out;
}

}  // namespace

TEST_CASE("Module::to(cpu) keeps the variables, names, flags and values and drops the gradients") {
  manual_seed(1);
  auto model = small_mlp();
  model->layers()[1]->set_trainable(false);
  const auto before = model->weights();
  const auto values = weight_values(*model);
  before.back().variable.impl()->grad = ones(before.back().variable.shape());
  REQUIRE(before.back().variable.has_grad());

  model->to(Device::cpu());
  CHECK(model->device() == Device::cpu());
  const auto after = model->weights();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].variable.same(before[i].variable));
    CHECK(after[i].name == before[i].name);
    CHECK(after[i].trainable == before[i].trainable);
    CHECK(after[i].variable.requires_grad() == before[i].variable.requires_grad());
    CHECK(after[i].variable.device() == Device::cpu());
    CHECK_FALSE(after[i].variable.has_grad());
  }
  CHECK(weight_values(*model) == values);
  CHECK(model->count_trainable_params() == 4 * 2 + 2);  // only the last Dense
}

TEST_CASE("Module::to moves every weight to a device and back bit-exactly; later weights are created there") {
  CudaBackendScope fake(fake_backend());
  manual_seed(2);
  auto model = small_mlp();
  const auto values = weight_values(*model);
  CHECK(model->device() == Device::cpu());

  model->to(Device::cuda());
  CHECK(model->device() == Device::cuda());
  for (const auto& w : model->weights()) CHECK(w.variable.device() == Device::cuda());
  for (const auto& layer : model->layers()) CHECK(layer->device() == Device::cuda());

  // A layer added after to() and built by add() is created on the device.
  model->add(std::make_shared<Dense>(3, "softmax"));
  CHECK(model->weights().back().variable.device() == Device::cuda());
  // A container over the layers (the feature cache's head) reports their device.
  auto head = head_of(*model, 2);
  CHECK(head->device() == Device::cuda());

  model->to(Device::cpu());
  for (const auto& w : model->weights()) CHECK(w.variable.device() == Device::cpu());
  auto back = weight_values(*model);
  back.resize(values.size());
  CHECK(back == values);
}

TEST_CASE("a model moved to the CPU trains exactly like one that never moved") {
  Tensor x = from_vector<float>({0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1}, {6, 3});
  Tensor y = from_vector<std::int64_t>({0, 1, 1, 0, 1, 0});
  std::vector<double> losses[2];
  for (int moved = 0; moved < 2; ++moved) {
    reset_layer_names();
    manual_seed(3);
    auto model = small_mlp();
    if (moved) model->to(Device::cpu());
    Trainer trainer(model);
    trainer.compile(std::make_shared<SGD>(0.1, 0.9), Loss::sparse_categorical_crossentropy());
    TensorBatchSource source(x, y, 2, true, 5);
    FitOptions options;
    options.epochs = 3;
    options.verbose = Verbosity::Quiet;
    losses[moved] = trainer.fit(source, options)["loss"];
  }
  CHECK(losses[0].size() == 3);
  CHECK(losses[0] == losses[1]);
}

TEST_CASE("weights of a device model are saved through the host and loaded back onto the device") {
  CudaBackendScope fake(fake_backend());
  const fs::path file = fs::temp_directory_path() / ("petal_nn_device_" + std::to_string(::getpid()) + ".safetensors");
  manual_seed(4);
  reset_layer_names();
  auto source = small_mlp();
  const auto values = weight_values(*source);
  source->to(Device::cuda());
  save_weights(*source, file);

  manual_seed(5);
  reset_layer_names();
  auto target = small_mlp();
  CHECK(weight_values(*target) != values);
  target->to(Device::cuda());
  test::fake_device_state().copies = 0;
  load_weights(*target, file);
  CHECK(test::fake_device_state().copies == static_cast<int>(values.size()));  // one host -> device copy per weight
  for (const auto& w : target->weights()) CHECK(w.variable.device() == Device::cuda());
  CHECK(weight_values(*target) == values);
  fs::remove(file);
}

TEST_CASE("the optimizer refuses a gradient on another device than its parameter") {
  CudaBackendScope fake(fake_backend());
  ag::Variable w(zeros({3}), true);
  w.set_name("dense/kernel");
  w.set_grad(ones({3}, DType::Float32, Device::cuda()));
  SGD sgd(0.1);
  CHECK_THROWS_AS(sgd.step({w}), DeviceError);
}

TEST_CASE("TensorBatchSource batches come from pinned host memory, also for device tensors") {
  const std::uint64_t before = pinned_host_allocator().stats().allocations;
  TensorBatchSource source(arange(12, DType::Int64).reshape({6, 2}).to(DType::Float32),
                           arange(6, DType::Int64), 4);
  std::optional<Batch> b = source.next();
  REQUIRE(b.has_value());
  CHECK(pinned_host_allocator().stats().allocations >= before + 2);
  CHECK(b->x.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7});

  CudaBackendScope fake(fake_backend());
  Tensor on_device = arange(6, DType::Int64).to(Device::cuda());
  Tensor rows = gather_rows(on_device, {5, 0});
  CHECK(rows.device() == Device::cpu());
  CHECK(rows.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 0});
}

TEST_CASE("require_device and usable_device: clear errors for unknown, unbuilt and missing devices") {
  CHECK(usable_device("cpu", "prog") == Device::cpu());
  try {
    usable_device("tpu", "prog");
    FAIL("no error");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("prog: unknown device 'tpu'") != std::string::npos);
  }
  {
    CudaBackendScope none(DeviceBackend{});
    try {
      require_device(Device::cuda(), "prog");
      FAIL("no error");
    } catch (const DeviceError& e) {
      CHECK(std::string(e.what()).find("built without the CUDA backend") != std::string::npos);
    }
  }
  CudaBackendScope fake(fake_backend());
  test::fake_device_state().device_count = 0;
  try {
    require_device(Device::cuda(), "prog");
    FAIL("no error");
  } catch (const DeviceError& e) {
    CHECK(std::string(e.what()).find("found no CUDA device") != std::string::npos);
  }
  test::fake_device_state().device_count = 1;
  CHECK(usable_device("cuda", "prog") == Device::cuda(0));
  try {
    usable_device("cuda:1", "prog");
    FAIL("no error");
  } catch (const DeviceError& e) {
    CHECK(std::string(e.what()).find("1 CUDA device found (cuda:0 to cuda:0)") != std::string::npos);
  }
}
