// MobileNetV2: Keras structure (parameter counts, names, shapes) and the
// ImageNet weights end to end (reference arrays, sample photos).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "autograd/variable.hpp"
#include "data/image_io.hpp"
#include "data/image_ops.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/safetensors.hpp"
#include "tests/nn/tensor_diff.hpp"
#include "tests/shared_data.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;

using petal::test::max_abs_diff;

namespace {

using petal::test::shared_dir;
fs::path weights_path() { return petal::test::mobilenet_weights_path(); }

Tensor read_floats(const fs::path& path, const Shape& shape) {
  const std::string bytes = data::read_file(path);
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  REQUIRE(bytes.size() == static_cast<std::size_t>(n) * sizeof(float));
  Tensor t = Tensor::empty(shape);
  std::memcpy(t.data<float>(), bytes.data(), bytes.size());
  return t;
}

std::int64_t argmax_row(const Tensor& t) {
  const auto v = t.contiguous().to_vector<float>();
  return static_cast<std::int64_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

TEST_CASE("MobileNetV2 parameter counts equal Keras's") {
  SUBCASE("include_top=false at 192") {
    MobileNetV2 base(Shape{192, 192, 3}, 1.0, false);
    CHECK(base.name() == "mobilenetv2_1.00_192");
    CHECK(base.count_params() == 2257984);
    CHECK(base.count_non_trainable_params() == 34112);
    CHECK(base.output_shape() == Shape{6, 6, 1280});
    base.set_trainable(false);
    CHECK(base.count_trainable_params() == 0);
  }
  SUBCASE("include_top=true at 224") {
    MobileNetV2 model(Shape{224, 224, 3}, 1.0, true);
    CHECK(model.count_params() == 3538984);
    CHECK(model.output_shape() == Shape{1000});
    CHECK(model.logits_activation() == ActivationKind::Softmax);
  }
  SUBCASE("pooling avg and other sizes") {
    MobileNetV2 pooled(Shape{160, 160, 3}, 1.0, false, "avg");
    CHECK(pooled.output_shape() == Shape{1280});
    MobileNetV2 max_pooled(Shape{96, 96, 3}, 1.0, false, "max");
    CHECK(max_pooled.output_shape() == Shape{1280});
    CHECK(max_pooled.children().back()->name() == "global_max_pooling2d");
    MobileNetV2 odd(Shape{97, 113, 3}, 1.0, false);  // odd sizes: correct_pad pads both sides
    CHECK(odd.output_shape() == Shape{4, 4, 1280});
  }
  SUBCASE("alpha 0.5 keeps Keras's rounding (widths divisible by 8, last conv stays 1280)") {
    MobileNetV2 half(Shape{224, 224, 3}, 0.5, false);
    const auto weights = half.weights();
    CHECK(weights.front().variable.shape() == Shape{3, 3, 3, 16});
    CHECK(half.output_shape() == Shape{7, 7, 1280});
    CHECK(make_divisible(24 * 0.5) == 16);  // 12 rounds up to 16
    CHECK(make_divisible(320 * 0.5) == 160);
  }
  SUBCASE("invalid arguments name the model") {
    CHECK_THROWS_AS(MobileNetV2(Shape{16, 16, 3}, 1.0, false), ShapeError);
    CHECK_THROWS_AS(MobileNetV2(Shape{192, 192, 1}, 1.0, false), ShapeError);
    CHECK_THROWS_AS(MobileNetV2(Shape{192, 192, 3}, 1.0, false, "min"), ValueError);
  }
}

TEST_CASE("MobileNetV2 weight names and shapes match the Keras weight file") {
  MobileNetV2 model(Shape{224, 224, 3}, 1.0, true);
  SafetensorsReader reader(weights_path());
  const auto weights = model.weights();
  REQUIRE(weights.size() == reader.entries().size());
  // The file stores tensors in network order, like the model creates them.
  for (std::size_t i = 0; i < weights.size(); ++i) {
    CHECK(weights[i].name == reader.entries()[i].name);
    CHECK(weights[i].variable.shape() == reader.entries()[i].shape);
  }
  std::vector<std::string> layer_names;
  for (const auto& child : model.children()) layer_names.push_back(child->name());
  auto has = [&](const std::string& n) { return std::find(layer_names.begin(), layer_names.end(), n) != layer_names.end(); };
  CHECK(has("Conv1_relu"));
  CHECK(has("block_1_pad"));
  CHECK(has("block_2_add"));
  CHECK_FALSE(has("block_3_add"));
  CHECK(has("block_16_project_BN"));
  CHECK(has("out_relu"));
  // Keras's model.layers: 154 for the base (InputLayer included), + global
  // pooling and predictions.
  CHECK(layer_names.size() == 156);
  CHECK(model.children().front()->type_name() == "InputLayer");
}

TEST_CASE("MobileNetV2 forward equals the reference arrays at 192") {
  const fs::path ref = shared_dir() / "models" / "reference";
  const Tensor input = read_floats(ref / "grace_hopper_192_input.bin", {1, 192, 192, 3});
  ag::NoGradGuard no_grad;
  SUBCASE("features, include_top=false") {
    MobileNetV2 base(Shape{192, 192, 3}, 1.0, false);
    base.load_weights(weights_path());
    const Tensor features = base(ag::Variable(input)).data();
    REQUIRE(features.shape() == Shape{1, 6, 6, 1280});
    const double diff = max_abs_diff(features, read_floats(ref / "grace_hopper_192_features.bin", {1, 6, 6, 1280}));
    MESSAGE("features: max abs diff ", diff);
    CHECK(diff < 1e-3);
  }
  SUBCASE("logits, include_top=true") {
    MobileNetV2 model(Shape{192, 192, 3}, 1.0, true);
    model.load_weights(weights_path());
    const Tensor logits = model.call_logits(ag::Variable(input)).data();
    REQUIRE(logits.shape() == Shape{1, 1000});
    const double diff = max_abs_diff(logits, read_floats(ref / "grace_hopper_192_logits.bin", {1, 1000}));
    MESSAGE("logits: max abs diff ", diff);
    CHECK(diff < 1e-3);
    CHECK(argmax_row(logits) == 652);
    const Tensor probs = model(ag::Variable(input)).data();
    CHECK(argmax_row(probs) == 652);
  }
}

TEST_CASE("MobileNetV2 load_weights refuses a file without the base's tensors") {
  const fs::path dir = fs::temp_directory_path() / ("petal_mnv2_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_safetensors(dir / "partial.safetensors", {{"Conv1/kernel", zeros({3, 3, 3, 32})}});
  MobileNetV2 base(Shape{96, 96, 3}, 1.0, false);
  CHECK_THROWS_AS(base.load_weights(dir / "partial.safetensors"), FormatError);
  fs::remove_all(dir);
}

TEST_CASE("MobileNetV2 top-1 of every sample photo equals labels.txt") {
  const fs::path samples = shared_dir() / "data" / "samples";
  std::ifstream labels(samples / "labels.txt");
  REQUIRE(labels.good());
  struct Sample {
    std::string file;
    std::int64_t index;
  };
  std::vector<Sample> expected;
  for (std::string line; std::getline(labels, line);) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    Sample s;
    std::string index;
    std::getline(fields, s.file, '\t');
    std::getline(fields, index, '\t');
    s.index = std::stoll(index);
    expected.push_back(s);
  }
  REQUIRE(expected.size() == 6);
  // One batch of all photos per size keeps the test fast.
  for (const int size : {224, 192}) {
    CAPTURE(size);
    MobileNetV2 model(Shape{size, size, 3}, 1.0, true);
    model.load_weights(weights_path());
    Tensor batch = Tensor::empty({static_cast<std::int64_t>(expected.size()), size, size, 3});
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const data::Image resized = data::resize_bilinear(data::read_image(samples / expected[i].file), size, size);
      data::pixels_to_float(resized.data(), batch.data<float>() + i * resized.size(), resized.size(),
                            data::PixelScale::MinusOneOne);
    }
    ag::NoGradGuard no_grad;
    const Tensor probs = model(ag::Variable(batch)).data();
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CAPTURE(expected[i].file);
      CHECK(argmax_row(probs.select(0, static_cast<std::int64_t>(i))) == expected[i].index);
    }
  }
}
