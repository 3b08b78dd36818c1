// Writes the seed corpora of the fuzz targets: fuzz_make_corpus OUT_DIR
// [FLOWERS_SHARD]. Everything is generated with petal's own encoders (and
// libpng/TurboJPEG directly for PNG and JPEG variants petal does not write:
// palettes, tRNS, 16-bit, interlaced, progressive); with a flowers shard, its
// first record and that record's JPEG are added as real-world seeds. Files
// stay under 64 KiB; the output is deterministic.
#include <png.h>
#include <turbojpeg.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "data/example.hpp"
#include "data/jpeg.hpp"
#include "data/png.hpp"
#include "data/tfrecord.hpp"
#include "nn/hdf5_file.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::data;
namespace fs = std::filesystem;

namespace {

fs::path out_dir;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  if (bytes.size() >= 64 * 1024) {
    std::cerr << "skipping " << target << "/" << name << ": " << bytes.size() << " bytes\n";
    return;
  }
  fs::create_directories(out_dir / target);
  std::ofstream(out_dir / target / name, std::ios::binary) << bytes;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Image gradient(int h, int w, int c) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        img.row(y)[x * c + k] = static_cast<std::uint8_t>((x * 255 / std::max(w - 1, 1) + y * 37 + k * 91) & 0xff);
  return img;
}

// ---- PNG variants through libpng ----
struct PngSpec {
  int width, height, bit_depth, color_type;
  bool interlace = false;
  bool trns = false;
  bool palette_alpha = false;
};

void png_write_string(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void png_no_flush(png_structp) {}

std::string make_png(const PngSpec& s) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error("make_png failed");
  }
  png_set_write_fn(png, &out, png_write_string, png_no_flush);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (s.color_type == PNG_COLOR_TYPE_PALETTE) {
    std::vector<png_color> palette(1u << s.bit_depth);
    for (std::size_t i = 0; i < palette.size(); ++i)
      palette[i] = {static_cast<png_byte>(i * 40), static_cast<png_byte>(255 - i * 20), static_cast<png_byte>(i * 7)};
    png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    if (s.trns) {
      std::vector<png_byte> alpha(palette.size());
      for (std::size_t i = 0; i < alpha.size(); ++i) alpha[i] = static_cast<png_byte>(255 - i * 16);
      png_set_tRNS(png, info, alpha.data(), static_cast<int>(alpha.size()), nullptr);
    }
  } else if (s.trns) {
    png_color_16 key{};
    key.gray = 1;
    key.red = 3;
    key.green = 5;
    key.blue = 7;
    png_set_tRNS(png, info, nullptr, 0, &key);
  }
  png_set_gAMA(png, info, 0.45455);
  png_text text{};
  text.compression = PNG_TEXT_COMPRESSION_NONE;
  text.key = const_cast<char*>("Comment");
  text.text = const_cast<char*>("petal fuzz seed");
  png_set_text(png, info, &text, 1);
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  const std::size_t row_bytes = (static_cast<std::size_t>(s.width) * channels * s.bit_depth + 7) / 8;
  std::vector<png_byte> pixels(row_bytes * s.height);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<png_byte>((i * 29 + i / row_bytes * 3) & 0xff);
  if (s.color_type == PNG_COLOR_TYPE_PALETTE && s.bit_depth == 8)
    for (auto& p : pixels) p = static_cast<png_byte>(p % 16);
  std::vector<png_bytep> rows(s.height);
  for (int y = 0; y < s.height; ++y) rows[y] = pixels.data() + y * row_bytes;
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

// ---- progressive JPEG through TurboJPEG's lossless transform ----
std::string make_progressive(const std::string& jpeg) {
  tjhandle h = tjInitTransform();
  unsigned char* dst = nullptr;
  unsigned long dst_size = 0;
  tjtransform xf{};
  xf.op = TJXOP_NONE;
  xf.options = TJXOPT_PROGRESSIVE;
  if (tjTransform(h, reinterpret_cast<const unsigned char*>(jpeg.data()), jpeg.size(), 1, &dst, &dst_size, &xf, 0) != 0)
    throw Error(std::string("tjTransform: ") + tjGetErrorStr2(h));
  std::string out(reinterpret_cast<char*>(dst), dst_size);
  tjFree(dst);
  tjDestroy(h);
  return out;
}

std::string with_length(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(static_cast<std::uint64_t>(header.size()) >> (8 * i));
  return out + header + std::string(data_bytes, '\x01');
}

std::shared_ptr<nn::Sequential> small_model() {
  nn::reset_layer_names();
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::InputLayer>(Shape{3}), std::make_shared<nn::Dense>(4, "relu"),
      std::make_shared<nn::BatchNormalization>(), std::make_shared<nn::Dense>(2, "softmax")});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fuzz_make_corpus OUT_DIR [FLOWERS_SHARD]\n";
    return 2;
  }
  out_dir = argv[1];
  manual_seed(1234);

  // Examples and TFRecords.
  const std::string small_jpeg = encode_jpeg(gradient(8, 8, 3), {80, true});
  Example flowers;
  flowers.set_bytes("image", {small_jpeg}).set_int64s("class", {3}).set_bytes("label", {"sunflowers"});
  Example mixed;
  mixed.set_floats("f", {0.5f, -1.25f, 1e30f, -0.0f})
      .set_int64s("i", {0, -1, 1LL << 62, 300})
      .set_bytes("b", {"", "x", std::string("\0\xff", 2)});
  Example empty_lists;
  empty_lists.set_floats("f", {}).set_int64s("i", {}).set_bytes("b", {});
  empty_lists.features["none"] = Feature{};
  put("example", "flowers_like", encode_example(flowers));
  put("example", "mixed", encode_example(mixed));
  put("example", "empty_lists", encode_example(empty_lists));
  put("example", "empty", encode_example(Example{}));

  put("tfrecord", "two_records",
      [&] {
        std::string s;
        for (const std::string& p : {encode_example(flowers), encode_example(mixed)})
          s += tfrecord_frame(p).substr(0, 12) + p + tfrecord_frame(p).substr(12);
        return s;
      }());
  put("tfrecord", "empty_payload", tfrecord_frame("").substr(0, 12) + tfrecord_frame("").substr(12));
  put("tfrecord", "empty_file", "");

  // Inputs interpreted by FuzzedDataProvider: a few deterministic byte strings.
  Generator gen(7);
  for (int i = 0; i < 6; ++i) {
    std::string bytes(16 + i * 40, '\0');
    for (auto& b : bytes) b = static_cast<char>(gen.next_u64());
    put("protobuf_wire", "random_" + std::to_string(i), bytes);
    put("image_ops", "random_" + std::to_string(i), bytes);
  }

  // JPEG.
  put("jpeg", "gray_8x8", encode_jpeg(gradient(8, 8, 1), {90, false}));
  put("jpeg", "rgb_16x16_444", encode_jpeg(gradient(16, 16, 3), {95, false}));
  put("jpeg", "rgb_17x13_420", encode_jpeg(gradient(13, 17, 3), {75, true}));
  put("jpeg", "rgb_64x48_q30", encode_jpeg(gradient(48, 64, 3), {30, true}));
  put("jpeg", "progressive_24x20", make_progressive(encode_jpeg(gradient(20, 24, 3), {85, true})));

  // PNG: petal's encoder for 1-4 channels, libpng for the other layouts.
  for (int c = 1; c <= 4; ++c) put("png", "petal_" + std::to_string(c) + "ch", encode_png(gradient(7, 9, c)));
  put("png", "palette8", make_png({6, 5, 8, PNG_COLOR_TYPE_PALETTE}));
  put("png", "palette4_trns", make_png({5, 4, 4, PNG_COLOR_TYPE_PALETTE, false, true}));
  put("png", "palette2_interlaced", make_png({9, 7, 2, PNG_COLOR_TYPE_PALETTE, true}));
  put("png", "gray1", make_png({13, 3, 1, PNG_COLOR_TYPE_GRAY}));
  put("png", "gray4_trns", make_png({5, 5, 4, PNG_COLOR_TYPE_GRAY, false, true}));
  put("png", "gray16", make_png({4, 4, 16, PNG_COLOR_TYPE_GRAY}));
  put("png", "gray_alpha16_interlaced", make_png({6, 6, 16, PNG_COLOR_TYPE_GRAY_ALPHA, true}));
  put("png", "rgb16_trns", make_png({4, 3, 16, PNG_COLOR_TYPE_RGB, false, true}));
  put("png", "rgb8_trns", make_png({4, 3, 8, PNG_COLOR_TYPE_RGB, false, true}));
  put("png", "rgba8_interlaced", make_png({10, 9, 8, PNG_COLOR_TYPE_RGB_ALPHA, true}));

  // safetensors.
  const fs::path tmp = fs::temp_directory_path() / ("petal_make_corpus_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const fs::path st = tmp / "t.safetensors";
  nn::write_safetensors(st,
                        {{"w", uniform({3, 2}, -1, 1)},
                         {"d", from_vector(std::vector<double>{1.5, -2.0})},
                         {"i", from_vector(std::vector<std::int64_t>{7, -7, 1LL << 40})},
                         {"u", from_vector(std::vector<std::uint8_t>{0, 255})},
                         {"scalar", full({}, 3.0)},
                         {"empty", zeros({0, 4})}},
                        {{"format", "pt"}, {"note", "fuzz \"seed\"\n"}});
  put("safetensors", "all_dtypes", slurp(st));
  put("safetensors", "empty_header", with_length("{}", 0));
  put("safetensors", "bf16_unsupported",
      with_length(R"({"h":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"__metadata__":{"a":"b"}})", 8));
  put("safetensors", "weights_io_names",
      with_length(R"({"dense/kernel":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},)"
                  R"("dense/bias":{"dtype":"F32","shape":[4],"data_offsets":[48,64]}})",
                  64));

  // JSON.
  {
    const std::string file = slurp(st);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[i]);
    put("json", "safetensors_header", file.substr(8, n));
  }
  put("json", "scalars", R"([null, true, false, 0, -0, 1.5e-300, 12345678901234567890, -1E+2, 0.1])");
  put("json", "strings", R"({"a":"\u00e9\ud83d\ude00\n\t\"\\\/","":"","\u0000":"x"})");
  put("json", "nested", std::string(40, '[') + "{\"k\":[1,{\"x\":null}]}" + std::string(40, ']'));
  put("json", "metadata", R"({"__metadata__":{"petal_checkpoint":"1","epoch":"3"},"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})");

  // Checkpoints of the fuzz target's model.
  {
    auto model = small_model();
    nn::Trainer trainer(model);
    auto adam = std::make_shared<nn::Adam>(0.01);
    trainer.compile(adam, nn::Loss::sparse_categorical_crossentropy());
    nn::Batch batch{uniform({6, 3}, -1, 1), from_vector(std::vector<std::int64_t>{0, 1, 0, 1, 1, 0})};
    trainer.train_step(batch);
    trainer.train_step(batch);
    const fs::path ck = tmp / "ck.safetensors";
    nn::save_checkpoint(ck, *model, *adam, 3, {{"note", "seed"}});
    put("checkpoint", "adam_epoch3", slurp(ck));
    nn::save_weights(*model, ck);
    put("checkpoint", "weights_only", slurp(ck));
    auto fresh = small_model();
    nn::Adam unused(0.01);
    nn::save_checkpoint(ck, *fresh, unused, 0);
    put("checkpoint", "fresh_epoch0", slurp(ck));
  }
#if PETAL_FUZZ_HAS_HDF5
  // Keras .h5 weights of the keras_h5 target's model: Keras 2's layout (petal's
  // writer, flat and nested) and Keras 3's (layers/<class>/vars/<i>).
  {
    auto keras_model = [](bool nested) -> std::shared_ptr<nn::Module> {
      nn::reset_layer_names();
      std::vector<std::shared_ptr<nn::Module>> convs = {std::make_shared<nn::InputLayer>(Shape{6, 6, 2}),
                                                        std::make_shared<nn::Conv2D>(3, 3),
                                                        std::make_shared<nn::BatchNormalization>()};
      std::vector<std::shared_ptr<nn::Module>> layers;
      if (nested) layers.push_back(std::make_shared<nn::Sequential>(convs, "base"));
      else layers = convs;
      layers.push_back(std::make_shared<nn::Flatten>());
      layers.push_back(std::make_shared<nn::Dense>(5, "softmax"));
      auto model = std::make_shared<nn::Sequential>(layers);
      model->build(Shape{6, 6, 2});
      return model;
    };
    const fs::path h5 = tmp / "w.h5";
    nn::save_weights(*keras_model(false), h5);
    put("keras_h5", "legacy", slurp(h5));
    nn::save_weights(*keras_model(true), h5);
    put("keras_h5", "legacy_nested", slurp(h5));
    auto model = keras_model(false);
    nn::hdf5::File file = nn::hdf5::File::create_in_memory(h5);
    const nn::hdf5::Group root = file.root();
    const char* keys[] = {"layers/conv2d", "layers/batch_normalization", "layers/dense"};
    const std::size_t layers_with_weights[] = {1, 2, 4};
    for (int k = 0; k < 3; ++k) {
      const nn::hdf5::Group vars = root.create_group(std::string(keys[k]) + "/vars");
      const auto weights = model->children()[layers_with_weights[k]]->weights();
      for (std::size_t i = 0; i < weights.size(); ++i) {
        const Tensor t = weights[i].variable.data().contiguous();
        vars.write_float_dataset(std::to_string(i), t.shape(), t.data<float>());
      }
    }
    root.create_group("layers/flatten/vars");
    const std::vector<char> bytes = file.image();
    put("keras_h5", "keras3", std::string(bytes.data(), bytes.size()));
  }
#endif
  fs::remove_all(tmp);

  // A real record and its JPEG.
  if (argc > 2) {
    TFRecordReader reader(argv[2]);
    std::string payload;
    if (reader.read(payload)) {
      put("example", "flowers_record0", payload);
      put("tfrecord", "flowers_record0", tfrecord_frame(payload).substr(0, 12) + payload + tfrecord_frame(payload).substr(12));
      const Example ex = decode_example(payload);
      put("jpeg", "flowers_record0", ex.bytes("image"));
    }
  }
  std::cout << "corpus written to " << out_dir.string() << "\n";
  return 0;
}
