// Checkpoints (nn/weights_io.cpp): the input is a checkpoint file, loaded into
// a small Dense + BatchNormalization model with an Adam optimizer, the way
// fit(initial_epoch) resumes. Invariants:
//  - load_checkpoint and load_weights throw petal::Error or succeed;
//  - a failed load_weights leaves every weight as it was (checks first);
//  - after a successful load_checkpoint the weights are the file's tensors bit
//    for bit, the optimizer's slots are its "optimizer/" tensors (as float32),
//    the iterations and the returned epoch are the metadata's values exactly
//    (no truncating casts);
//  - save_checkpoint of the loaded state loads back to the same weights,
//    slots, iterations, epoch and random generator state;
//  - a training step from the loaded state does not crash.
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "fuzz_common.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::shared_ptr<Sequential> small_model() {
  reset_layer_names();
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{3}), std::make_shared<Dense>(4, "relu"),
      std::make_shared<BatchNormalization>(), std::make_shared<Dense>(2, "softmax")});
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.nbytes() == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

std::map<std::string, Tensor> weights_of(const Module& model) {
  std::map<std::string, Tensor> out;
  for (const auto& w : model.weights()) out.emplace(w.name, w.variable.data().clone());
  return out;
}

void restore(Module& model, const std::map<std::string, Tensor>& snapshot) {
  for (auto& w : model.weights()) w.variable.mutable_data().copy_(snapshot.at(w.name));
}

bool same_weights(const Module& model, const std::map<std::string, Tensor>& expected) {
  for (const auto& w : model.weights())
    if (!same_bytes(w.variable.data(), expected.at(w.name))) return false;
  return true;
}

bool same_state(const Optimizer& a, const Optimizer& b) {
  const auto sa = a.state(), sb = b.state();
  if (sa.size() != sb.size() || a.iterations() != b.iterations()) return false;
  for (std::size_t i = 0; i < sa.size(); ++i)
    if (sa[i].first != sb[i].first || !same_bytes(sa[i].second, sb[i].second)) return false;
  return true;
}

std::int64_t metadata_int(const Metadata& m, const std::string& key) {
  return std::strtoll(m.at(key).c_str(), nullptr, 10);
}

struct Fixture {
  std::shared_ptr<Sequential> model = small_model();
  std::shared_ptr<Sequential> other = small_model();
  std::shared_ptr<Adam> adam = std::make_shared<Adam>(0.01);
  Adam adam2{0.01};
  std::map<std::string, Tensor> initial;
  std::unique_ptr<Trainer> trainer;
  Batch batch;
  Generator::State rng0;

  Fixture() {
    FUZZ_CHECK(model->built() && other->built());
    initial = weights_of(*model);
    restore(*other, initial);
    trainer = std::make_unique<Trainer>(model);
    trainer->compile(adam, Loss::sparse_categorical_crossentropy());
    batch = Batch{uniform({4, 3}, -1, 1), from_vector(std::vector<std::int64_t>{0, 1, 1, 0})};
    rng0 = default_generator().state();
  }
  // Every input starts from the same model, optimizer and generator.
  void reset() {
    restore(*model, initial);
    restore(*other, initial);
    adam->load_state({}, 0);
    adam2.load_state({}, 0);
    default_generator().set_state(rng0);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("PETAL_NUM_THREADS", "1", 0);  // one thread: deterministic and cheap
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fx;
  static fuzz::MemFile input("checkpoint-input");
  fx.reset();
  input.assign(data, size);

  // load_weights checks everything before changing anything.
  const bool weights_ok = fuzz::expect_ok_or_error("load_weights", [&] { load_weights(*fx.other, input.path()); });
  if (!weights_ok) FUZZ_CHECK(same_weights(*fx.other, fx.initial), "a failed load_weights changed the model");

  int epoch = -1;
  if (!fuzz::expect_ok_or_error("load_checkpoint", [&] { epoch = load_checkpoint(input.path(), *fx.model, *fx.adam); }))
    return 0;
  FUZZ_CHECK(weights_ok, "load_checkpoint succeeded where load_weights failed");

  // The loaded state is the file's.
  fuzz::expect_ok("re-reading a loaded checkpoint", [&] {
    SafetensorsReader reader(input.path());
    const Metadata& meta = reader.metadata();
    FUZZ_CHECK(epoch == metadata_int(meta, "epoch"), "load_checkpoint returned epoch ", epoch, ", metadata says \"",
               meta.at("epoch"), "\"");
    FUZZ_CHECK(fx.adam->iterations() == metadata_int(meta, "optimizer_iterations"), "iterations ",
               fx.adam->iterations(), ", metadata says \"", meta.at("optimizer_iterations"), "\"");
    for (const auto& w : fx.model->weights())
      FUZZ_CHECK(same_bytes(w.variable.data(), reader.read(w.name)), "weight ", w.name, " differs from the file");
    std::map<std::string, Tensor> slots;
    for (const auto& [key, t] : fx.adam->state()) slots.emplace(key, t);
    std::size_t expected_slots = 0;
    for (const auto& e : reader.entries()) {
      if (e.name.rfind("optimizer/", 0) != 0) continue;
      ++expected_slots;
      const auto it = slots.find(e.name.substr(10));
      FUZZ_CHECK(it != slots.end(), "slot ", e.name, " not restored");
      FUZZ_CHECK(same_bytes(it->second, reader.read(e).to(DType::Float32).contiguous().reshape({-1})), "slot ",
                 e.name, " differs from the file");
    }
    FUZZ_CHECK(slots.size() == expected_slots, slots.size(), " slots restored, ", expected_slots, " in the file");
  });

  // save -> load round trip.
  const auto rng_after_load = default_generator().state();
  const std::filesystem::path file = fuzz::scratch_dir() / "checkpoint.safetensors";
  int epoch2 = -1;
  fuzz::expect_ok("save_checkpoint -> load_checkpoint", [&] {
    save_checkpoint(file, *fx.model, *fx.adam, epoch);
    default_generator().set_state(fx.rng0);
    epoch2 = load_checkpoint(file, *fx.other, fx.adam2);
  });
  FUZZ_CHECK(epoch2 == epoch);
  FUZZ_CHECK(same_weights(*fx.other, weights_of(*fx.model)), "weights changed in a save/load round trip");
  FUZZ_CHECK(same_state(*fx.adam, fx.adam2), "optimizer state changed in a save/load round trip");
  const auto rng = default_generator().state();
  FUZZ_CHECK(rng.s == rng_after_load.s && rng.has_spare == rng_after_load.has_spare &&
             fuzz::same_bits(rng.spare, rng_after_load.spare), "generator state changed in a save/load round trip");

  // Training goes on from whatever was loaded (NaN weights, odd slots...).
  fuzz::expect_ok_or_error("train_step after load", [&] { fx.trainer->train_step(fx.batch); });
  return 0;
}
