// Writes the inputs tests/examples/bad_arguments.sh runs the examples on, so
// the test needs nothing from ../shared: small valid files (a flowers_transfer
// model of input size 32, a MobileNetV2 with random weights and 1000 labels,
// photos, shards) and TFRecord shards whose framing is sound but whose
// records are not what the flowers readers expect.
//
//   make_example_inputs DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/random.hpp"
#include "data/example.hpp"
#include "data/jpeg.hpp"
#include "data/png.hpp"
#include "data/tfrecord.hpp"
#include "examples/transfer_model.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/weights_io.hpp"

namespace fs = std::filesystem;
using namespace petal;

namespace {

data::Image gradient_photo(int size, int seed) {
  data::Image image(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        image.pixels[(static_cast<std::size_t>(y) * size + x) * 3 + c] =
            static_cast<std::uint8_t>((x * 16 + y * 8 + c * 64 + seed * 40) & 0xff);
  return image;
}

std::string flower_record(int seed, std::int64_t cls) {
  data::Example example;
  example.set_bytes("image", {data::encode_jpeg(gradient_photo(16, seed))}).set_int64s("class", {cls});
  return data::encode_example(example);
}

void write_shard(const fs::path& path, const std::vector<std::string>& records) {
  data::TFRecordWriter writer(path);
  for (const auto& r : records) writer.write(r);
  writer.close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_example_inputs DIR\n");
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    fs::create_directories(dir);
    manual_seed(7);

    examples::TransferModel tm = examples::build_transfer_model(
        32, "gap", {"daisy", "dandelion", "roses", "sunflowers", "tulips"}, data::PixelScale::MinusOneOne);
    tm.model->build(Shape{32, 32, 3});
    nn::save_weights(*tm.model, dir / "model.safetensors", examples::transfer_metadata(tm));

    nn::MobileNetV2 mobilenet(Shape{32, 32, 3}, 1.0, /*include_top=*/true);
    nn::save_weights(mobilenet, dir / "mobilenet.safetensors");
    std::ofstream labels(dir / "imagenet_labels.txt");
    for (int i = 0; i < 1000; ++i) labels << "class " << i << "\n";
    labels.close();
    if (!labels) throw IOError("cannot write " + (dir / "imagenet_labels.txt").string());

    data::write_png(dir / "photo.png", gradient_photo(24, 1));
    std::ofstream jpeg(dir / "photo.jpg", std::ios::binary);
    jpeg << data::encode_jpeg(gradient_photo(40, 2));
    jpeg.close();
    if (!jpeg) throw IOError("cannot write " + (dir / "photo.jpg").string());

    write_shard(dir / "good.tfrec", {flower_record(0, 0), flower_record(1, 3)});
    write_shard(dir / "not_example.tfrec", {flower_record(0, 0), std::string("\x0a\x09zz", 4)});
    data::Example no_image;
    no_image.set_int64s("class", {1});
    write_shard(dir / "no_image.tfrec", {flower_record(0, 0), data::encode_example(no_image)});
    write_shard(dir / "bad_class.tfrec", {flower_record(0, 0), flower_record(1, 9)});
    data::Example bad_jpeg;
    bad_jpeg.set_bytes("image", {"\xff\xd8\xff not really a JPEG"}).set_int64s("class", {2});
    write_shard(dir / "bad_jpeg.tfrec", {data::encode_example(bad_jpeg)});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_example_inputs: %s\n", e.what());
    return 1;
  }
  return 0;
}
