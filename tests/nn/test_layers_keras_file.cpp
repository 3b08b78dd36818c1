// A Keras 3 weight file of a model using the new layers (SeparableConv2D,
// LayerNormalization, Conv2DTranspose, Embedding), written by Keras itself
// (data/keras_new_layers_model.py): petal's same model loads it with every
// weight matched by class, name, order and shape, and gives Keras's output.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "data/keras_new_layers_io.hpp"
#include "layer_check.hpp"
#include "nn/keras_h5.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;
using namespace petal::nn::testing;

TEST_CASE("a Keras 3 .weights.h5 file of the new layers loads 1:1 and gives Keras's output") {
  const char* source = std::getenv("PETAL_SOURCE_DIR");
  REQUIRE_MESSAGE(source != nullptr, "PETAL_SOURCE_DIR is not set (run through meson test)");
  const std::filesystem::path file =
      std::filesystem::path(source) / "tests" / "nn" / "data" / "keras_new_layers.weights.h5";

  auto image = Input({6, 6, 3}, "image");
  auto x = layer<SeparableConv2D>(4, 3, SeparableConvOptions{.padding = Padding::Same, .depth_multiplier = 2})(image);
  x = layer<LayerNormalization>()(x);
  x = layer<Conv2DTranspose>(2, 3, ConvOptions{.strides = 2, .padding = Padding::Same})(x);
  x = layer<GlobalAveragePooling2D>()(x);
  auto tokens = Input({4}, "tokens");
  auto e = layer<Flatten>()(layer<Embedding>(10, 3)(tokens));
  auto y = layer<Dense>(3)(layer<Concatenate>()({x, e}));
  auto model = std::make_shared<Model>(std::vector{image, tokens}, std::vector{y});

  REQUIRE(weight_file_format(file) == WeightFileFormat::keras_h5_v3);
  load_keras_h5(*model, file);

  const std::vector<ag::Variable> out = (*model)(std::vector<ag::Variable>{
      ag::Variable(from_vector<float>(keras_new_layers::image, {2, 6, 6, 3})),
      ag::Variable(from_vector<float>(keras_new_layers::tokens, {2, 4}))});
  REQUIRE(out.size() == 1);
  CHECK(out[0].shape() == Shape{2, 3});
  const std::vector<float> got = values(out[0]);
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(got[i] == doctest::Approx(keras_new_layers::output[i]).epsilon(1e-4).scale(1.0));
}
