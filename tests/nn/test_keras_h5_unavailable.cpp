// Keras .h5 weights in a petal built without libhdf5 (-Dhdf5=disabled, or
// auto without libhdf5-dev, as on a bare GPU machine): keras_h5_available()
// says so, and reading or writing an .h5 is an IOError that names libhdf5,
// so a program can skip its optional .h5 copy (flowers_transfer does) and a
// user who asked for one learns what to install.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "nn/keras_h5.hpp"
#include "nn/nn.hpp"
#include "tests/nn/temp_dir.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<Sequential> small_model() {
  reset_layer_names();
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{3}), std::make_shared<Dense>(2, "softmax")});
}

}  // namespace

TEST_CASE("without libhdf5, keras_h5_available is false and .h5 files are an IOError naming libhdf5") {
  CHECK_FALSE(keras_h5_available());
  const fs::path dir = test::nn_temp_dir("h5_unavailable");
  auto model = small_model();

  const fs::path written = dir / "model.h5";
  const std::string save_message = test::thrown_message<IOError>([&] { save_weights(*model, written); });
  CHECK(save_message.find("libhdf5") != std::string::npos);
  CHECK(save_message.find("model.h5") != std::string::npos);
  CHECK_FALSE(fs::exists(written));

  // A file with the HDF5 signature is recognised as HDF5, then refused.
  const fs::path read = dir / "weights.h5";
  {
    std::ofstream out(read, std::ios::binary);
    const char signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
    out.write(signature, sizeof signature);
    out << std::string(512, '\0');
  }
  const std::string load_message = test::thrown_message<IOError>([&] { load_weights(*model, read); });
  CHECK(load_message.find("libhdf5") != std::string::npos);

  // safetensors still works.
  const fs::path safetensors = dir / "model.safetensors";
  save_weights(*model, safetensors);
  CHECK_NOTHROW(load_weights(*model, safetensors));
  fs::remove_all(dir);
}
