// Writes what a public mirror would serve to a fresh machine, in the names
// scripts/fetch_assets.sh asks for, so tests/fresh_machine/run_main_from_mirror.sh
// needs nothing from ../shared:
//
//   DIR/flowers/flowers00-230.tfrec ... flowers03-230.tfrec   small 192x192 JPEG shards
//   DIR/keras/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5
//   DIR/keras/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5
//   DIR/imagenet_class_index.json                              1000 classes
//
// The .h5 files hold seeded random weights in the official files' layout
// (Keras 2 legacy, written by petal's writer).
//
//   make_mirror DIR [RECORDS_PER_SHARD]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/random.hpp"
#include "data/example.hpp"
#include "data/jpeg.hpp"
#include "data/tfrecord.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/weights_io.hpp"

namespace fs = std::filesystem;
using namespace petal;

namespace {

std::string flower_record(int index, int size) {
  data::Image image(size, size, 3);
  Generator gen(static_cast<std::uint64_t>(index) + 1);
  for (auto& p : image.pixels) p = static_cast<std::uint8_t>(gen.uniform_int(256));
  data::Example example;
  example.set_bytes("image", {data::encode_jpeg(image)}).set_int64s("class", {index % 5});
  return data::encode_example(example);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: make_mirror DIR [RECORDS_PER_SHARD]\n");
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    const int per_shard = argc == 3 ? std::stoi(argv[2]) : 12;
    fs::create_directories(dir / "flowers");
    fs::create_directories(dir / "keras");
    for (int shard = 0; shard < 4; ++shard) {
      char name[32];
      std::snprintf(name, sizeof name, "flowers%02d-230.tfrec", shard);
      data::TFRecordWriter writer(dir / "flowers" / name);
      for (int i = 0; i < per_shard; ++i) writer.write(flower_record(shard * per_shard + i, 192));
      writer.close();
    }
    manual_seed(5);
    nn::MobileNetV2 top(Shape{224, 224, 3}, 1.0, /*include_top=*/true);
    nn::save_weights(top, dir / "keras" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5");
    nn::MobileNetV2 no_top(Shape{192, 192, 3}, 1.0, /*include_top=*/false);
    nn::save_weights(no_top, dir / "keras" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5");
    std::ofstream index(dir / "imagenet_class_index.json");
    index << "{";
    for (int i = 0; i < 1000; ++i) index << (i ? ", " : "") << "\"" << i << "\": [\"n" << 1000000 + i << "\", \"class_" << i << "\"]";
    index << "}";
    index.close();
    if (!index) throw IOError("cannot write " + (dir / "imagenet_class_index.json").string());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_mirror: %s\n", e.what());
    return 1;
  }
}
