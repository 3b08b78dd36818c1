// Keras HDF5 weights (nn/keras_h5.cpp over libhdf5): the input is an .h5
// file, loaded into a small Conv2D + BatchNormalization + Dense model by
// order and by name. Run only when named (scripts/fuzz.sh keras_h5), outside
// `all`: Debian's libhdf5 1.10.8 itself hangs and over-reads on some mutated
// files (README.md lists those found). Invariants:
//  - weight_file_format and load_weights throw petal::Error or succeed;
//  - a failed load leaves every weight as it was (all checks come first);
//  - what loaded saves as .h5 and loads back bit for bit.
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nn/keras_h5.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::shared_ptr<Sequential> small_model() {
  reset_layer_names();
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{6, 6, 2}), std::make_shared<Conv2D>(3, 3), std::make_shared<BatchNormalization>(),
      std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
  return model;
}

std::vector<std::vector<float>> snapshot(const Module& model) {
  std::vector<std::vector<float>> values;
  for (const auto& w : model.weights()) values.push_back(w.variable.data().to_vector<float>());
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile file("keras_h5");
  file.assign(data, size);
  auto model = small_model();
  const auto before = snapshot(*model);
  fuzz::expect_ok_or_error("weight_file_format", [&] { weight_file_format(file.path()); });
  for (bool by_name : {false, true}) {
    LoadOptions options;
    options.by_name = by_name;
    const bool loaded = fuzz::expect_ok_or_error("load_weights", [&] { load_weights(*model, file.path(), options); });
    if (!loaded) {
      FUZZ_CHECK(snapshot(*model) == before, "a failed load changed weights (by_name ", by_name, ")");
      continue;
    }
    const auto after = snapshot(*model);
    const auto saved = fuzz::scratch_dir() / "resaved.h5";
    fuzz::expect_ok("save_weights(.h5)", [&] { save_weights(*model, saved); });
    auto again = small_model();
    fuzz::expect_ok("load_weights(resaved .h5)", [&] { load_weights(*again, saved); });
    // Bitwise, NaN payloads included.
    const auto reread = snapshot(*again);
    FUZZ_CHECK(reread.size() == after.size());
    for (std::size_t i = 0; i < after.size(); ++i)
      FUZZ_CHECK(reread[i].size() == after[i].size() &&
                     std::memcmp(reread[i].data(), after[i].data(), after[i].size() * sizeof(float)) == 0,
                 "weight ", i, " changed in a save/load round trip");
    return 0;
  }
  return 0;
}
