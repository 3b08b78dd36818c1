// Keras HDF5 weights: files laid out as Keras 2 and Keras 3 write them (made
// here with libhdf5 directly, not with petal's writer), the official
// keras-applications quirks (input_1, Logits), nested models, petal's own
// writer read back, one error listing every mismatch, and corrupt files.
#include <doctest/doctest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/hdf5_file.hpp"
#include "nn/nn.hpp"
#include "nn/keras_h5.hpp"
#include "nn/mobilenet_v2.hpp"
#include "tests/nn/temp_dir.hpp"
#include "tests/thrown_message.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() { return test::nn_temp_dir("h5"); }

// ---- a minimal Keras-layout writer on raw libhdf5 calls ----

class H5Writer {
 public:
  explicit H5Writer(const fs::path& path) { file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); }
  ~H5Writer() { H5Fclose(file_); }
  hid_t root() const { return file_; }

  hid_t group(const std::string& path) {
    hid_t links = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(links, 1);
    hid_t g = H5Gcreate2(file_, path.c_str(), links, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(links);
    REQUIRE(g >= 0);
    opened_.push_back(g);
    return g;
  }

  // Fixed-length strings, as h5py writes numpy "S" arrays (Keras 2's lists).
  static void fixed_strings(hid_t object, const char* name, const std::vector<std::string>& values) {
    std::size_t width = 1;
    for (const auto& v : values) width = std::max(width, v.size());
    std::vector<char> buffer(values.size() * width, '\0');
    for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(&buffer[i * width], values[i].data(), values[i].size());
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, width);
    hsize_t dims[1] = {values.size()};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, buffer.data());
    H5Aclose(attr), H5Sclose(space), H5Tclose(type);
  }
  static void empty_list(hid_t object, const char* name) {
    hsize_t dims[1] = {0};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t attr = H5Acreate2(object, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Aclose(attr), H5Sclose(space);
  }
  static void variable_string(hid_t object, const char* name, const char* value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, &value);
    H5Aclose(attr), H5Sclose(space), H5Tclose(type);
  }
  void dataset(hid_t parent, const std::string& name, const Tensor& t, hid_t file_type = H5T_IEEE_F32LE) {
    const Tensor c = t.contiguous();
    std::vector<hsize_t> dims(c.shape().begin(), c.shape().end());
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t links = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(links, 1);
    hid_t ds = H5Dcreate2(parent, name.c_str(), file_type, space, links, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(ds >= 0);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data<float>());
    H5Dclose(ds), H5Pclose(links), H5Sclose(space);
  }
  void close_groups() {
    for (hid_t g : opened_) H5Gclose(g);
    opened_.clear();
  }

 private:
  hid_t file_;
  std::vector<hid_t> opened_;
};

struct LegacyLayer {
  std::string group;
  std::vector<std::pair<std::string, Tensor>> weights;  // "<layer>/<var>" (":0" added), value
};

// Keras 2 save_weights layout; `input_first` adds Keras 2.1's weightless input_1.
void write_legacy(const fs::path& path, const std::vector<LegacyLayer>& layers, bool input_first = false) {
  H5Writer w(path);
  std::vector<std::string> names;
  if (input_first) {
    names.push_back("input_1");
    H5Writer::empty_list(w.group("input_1"), "weight_names");
  }
  for (const LegacyLayer& layer : layers) {
    names.push_back(layer.group);
    hid_t g = w.group(layer.group);
    std::vector<std::string> weight_names;
    for (const auto& [name, value] : layer.weights) {
      weight_names.push_back(name + ":0");
      w.dataset(g, name + ":0", value);
    }
    if (weight_names.empty()) H5Writer::empty_list(g, "weight_names");
    else H5Writer::fixed_strings(g, "weight_names", weight_names);
  }
  H5Writer::fixed_strings(w.root(), "layer_names", names);
  H5Writer::fixed_strings(w.root(), "backend", {"tensorflow"});
  H5Writer::variable_string(w.root(), "keras_version", "2.1.2");
  w.close_groups();
}

// One legacy group per top-level layer of a flat model (leaf children).
std::vector<LegacyLayer> flat_layers(const Module& model) {
  std::vector<LegacyLayer> layers;
  for (const auto& child : model.children()) {
    if (child->type_name() == "InputLayer") continue;
    LegacyLayer layer{child->name(), {}};
    for (const WeightRef& w : child->weights()) layer.weights.emplace_back(w.name, w.variable.data());
    layers.push_back(std::move(layer));
  }
  return layers;
}

void randomize(Module& model, std::uint64_t seed) {
  manual_seed(seed);
  for (WeightRef w : model.weights()) {
    Tensor& t = w.variable.mutable_data();
    t.copy_(uniform(t.shape(), 0.5f, 1.5f));  // positive: valid as variances too
  }
}

void check_same_weights(const Module& a, const Module& b) {
  const auto wa = a.weights(), wb = b.weights();
  REQUIRE(wa.size() == wb.size());
  for (std::size_t k = 0; k < wa.size(); ++k) {
    INFO(wa[k].name);
    CHECK(wa[k].variable.data().to_vector<float>() == wb[k].variable.data().to_vector<float>());
  }
}

std::string error_of(const std::function<void()>& f) { return test::thrown_message<Error>(f); }

std::shared_ptr<Sequential> small_cnn(const std::string& head_name = "") {
  DenseOptions head;
  head.name = head_name;
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{6, 6, 2}), std::make_shared<Conv2D>(3, 3), std::make_shared<BatchNormalization>(),
      std::make_shared<ReLU>(6.0), std::make_shared<Conv2D>(4, 1), std::make_shared<Flatten>(),
      std::make_shared<Dense>(5, "softmax", head)});
}

// Loads file into a fresh small_cnn (layer names counted from zero again, as
// when `original` was made) and checks that it holds original's weights.
std::shared_ptr<Sequential> load_small_cnn_checked(const Module& original, const fs::path& file) {
  reset_layer_names();
  auto loaded = small_cnn();
  load_weights(*loaded, file);
  check_same_weights(original, *loaded);
  return loaded;
}

}  // namespace

TEST_CASE("a petal built with libhdf5 says Keras .h5 files are available") { CHECK(keras_h5_available()); }

TEST_CASE("keras_snake_case follows Keras 3's to_snake_case") {
  CHECK(keras_snake_case("Conv2D") == "conv2d");
  CHECK(keras_snake_case("DepthwiseConv2D") == "depthwise_conv2d");
  CHECK(keras_snake_case("BatchNormalization") == "batch_normalization");
  CHECK(keras_snake_case("Dense") == "dense");
  CHECK(keras_snake_case("ReLU") == "re_lu");
  CHECK(keras_snake_case("Functional") == "functional");
}

TEST_CASE("MobileNetV2 from a file laid out as the official keras-applications .h5 equals the original bit for bit") {
  // The 224 file's layout at a small size: input_1 first, the classifier
  // named Logits, fixed- and variable-length string attributes.
  reset_layer_names();
  MobileNetV2Options options;
  options.input_shape = {64, 64, 3};
  options.classes = 7;
  MobileNetV2 original(options);
  randomize(original, 3);
  std::vector<LegacyLayer> layers = flat_layers(original);
  for (auto& layer : layers)
    if (layer.group == "predictions") {
      layer.group = "Logits";
      for (auto& [name, value] : layer.weights) name = "Logits/" + name.substr(name.find('/') + 1);
    }
  const fs::path file = temp_dir() / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_64.h5";
  write_legacy(file, layers, /*input_first=*/true);
  CHECK(weight_file_format(file) == WeightFileFormat::keras_h5_legacy);

  reset_layer_names();
  MobileNetV2 loaded(options);
  LoadReport report = loaded.load_weights(file);
  CHECK(report.loaded.size() == original.weights().size());
  CHECK(report.metadata.at("keras_version") == "2.1.2");
  CHECK(report.metadata.at("backend") == "tensorflow");
  check_same_weights(original, loaded);
  const Tensor x = uniform({2, 64, 64, 3}, -1, 1);
  CHECK(original(ag::Variable(x)).data().to_vector<float>() == loaded(ag::Variable(x)).data().to_vector<float>());

  // A base without top reads the same file by name (its classifier ignored).
  reset_layer_names();
  options.include_top = false;
  MobileNetV2 base(options);
  CHECK(base.load_weights(file).loaded.size() == base.weights().size());
}

TEST_CASE("legacy layers pair by order; within a layer by names where both sides use the same ones") {
  reset_layer_names();
  auto a = small_cnn();
  randomize(*a, 5);
  const fs::path file = temp_dir() / "renamed.h5";
  std::vector<LegacyLayer> layers = flat_layers(*a);
  layers[0].group = "first_conv";  // a different layer name: matched by order
  write_legacy(file, layers);
  load_small_cnn_checked(*a, file);

  // Weights stored in another order pair by their names; names the model
  // does not use (Keras 3's "kernel" for a depthwise kernel) pair by order.
  layers = flat_layers(*a);
  std::swap(layers[1].weights[0], layers[1].weights[1]);  // batch_normalization: beta before gamma
  layers[0].weights[0].first = "conv2d/weights";
  write_legacy(file, layers);
  auto c = load_small_cnn_checked(*a, file);

  // A layer with a weight too few: the count is named.
  layers = flat_layers(*a);
  REQUIRE(layers[3].group == "conv2d_1");
  layers[3].weights.pop_back();
  write_legacy(file, layers);
  const std::string message = error_of([&] { load_weights(*c, file); });
  CHECK(message.find("layer \"conv2d_1\" of the file holds 1 weight(s), layer \"conv2d_1\" of the model 2") !=
        std::string::npos);
}

TEST_CASE("a nested model's group (a Functional base inside a Sequential) loads by the inner names") {
  reset_layer_names();
  auto make = [] {
    auto inner = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        std::make_shared<InputLayer>(Shape{6, 6, 2}), std::make_shared<Conv2D>(3, 3), std::make_shared<BatchNormalization>(),
        std::make_shared<Conv2D>(4, 1)}, "base");
    return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        inner, std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
  };
  auto a = make();
  randomize(*a, 7);
  // Keras 2 wrote a trainable base as its trainable weights, then the moving
  // statistics: the inner layers' weights are interleaved.
  const auto inner = a->children()[0]->weights();
  LegacyLayer base{"base", {}};
  for (const auto& w : inner)
    if (w.is_parameter) base.weights.emplace_back(w.name, w.variable.data());
  for (const auto& w : inner)
    if (!w.is_parameter) base.weights.emplace_back(w.name, w.variable.data());
  LegacyLayer dense{"dense", {}};
  for (const auto& w : a->children()[2]->weights()) dense.weights.emplace_back(w.name, w.variable.data());
  const fs::path file = temp_dir() / "nested.h5";
  write_legacy(file, {base, LegacyLayer{"flatten", {}}, dense});
  reset_layer_names();
  auto b = make();
  load_weights(*b, file);
  check_same_weights(*a, *b);

  // A wrong shape, a layer short of a weight and an extra layer: one error naming all three.
  REQUIRE(base.weights[5].first == "conv2d_1/bias");
  base.weights[0].second = zeros({3, 3, 2, 9});  // conv2d/kernel
  base.weights.erase(base.weights.begin() + 5);
  base.weights.emplace_back("stray/kernel", zeros({2}));
  write_legacy(file, {base, LegacyLayer{"flatten", {}}, dense});
  const auto before = b->weights()[0].variable.data().to_vector<float>();
  const std::string message = error_of([&] { load_weights(*b, file); });
  INFO(message);
  CHECK(message.find("3 mismatches") != std::string::npos);
  CHECK(message.find("\"conv2d/kernel\": shape [3, 3, 2, 9] in the file") != std::string::npos);
  CHECK(message.find("layer \"conv2d_1\" of the file holds 1 weight(s), layer \"conv2d_1\" of the model 2") !=
        std::string::npos);
  CHECK(message.find("\"stray/kernel\": in group \"base\" of the file but not in the model") != std::string::npos);
  CHECK(b->weights()[0].variable.data().to_vector<float>() == before);  // nothing changed
}

TEST_CASE("a Keras 3 .weights.h5 (layers/<class>_<n>/vars/<i>) loads by structure") {
  reset_layer_names();
  auto a = small_cnn();
  randomize(*a, 9);
  const fs::path file = temp_dir() / "model.weights.h5";
  {
    H5Writer w(file);
    const std::vector<std::pair<std::string, int>> keys = {
        {"layers/conv2d", 1}, {"layers/batch_normalization", 2}, {"layers/conv2d_1", 4}, {"layers/dense", 6}};
    for (const auto& [key, child] : keys) {
      hid_t vars = w.group(key + "/vars");
      const auto weights = a->children()[static_cast<std::size_t>(child)]->weights();
      for (std::size_t i = 0; i < weights.size(); ++i) w.dataset(vars, std::to_string(i), weights[i].variable.data());
    }
    w.group("layers/re_lu/vars");  // weightless layers have empty groups
    w.group("layers/flatten/vars");
    w.group("vars");
    hid_t optimizer = w.group("optimizer/vars");  // not the model's: ignored
    w.dataset(optimizer, "0", zeros({1}));
    w.close_groups();
  }
  CHECK(weight_file_format(file) == WeightFileFormat::keras_h5_v3);
  load_small_cnn_checked(*a, file);

  // A model with one more Conv2D: its group is missing -> error naming it.
  reset_layer_names();
  auto c = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{6, 6, 2}), std::make_shared<Conv2D>(3, 3), std::make_shared<BatchNormalization>(),
      std::make_shared<Conv2D>(4, 1), std::make_shared<Conv2D>(4, 1), std::make_shared<Flatten>(),
      std::make_shared<Dense>(5, "softmax")});
  const std::string message = error_of([&] { load_weights(*c, file); });
  CHECK(message.find("/layers/conv2d_2/vars") != std::string::npos);
  CHECK(message.find("shape [1, 1, 4, 4] in the file") == std::string::npos);
}

TEST_CASE("save_weights(.h5) writes the legacy layout, read back bit for bit, nested order as Keras 2") {
  reset_layer_names();
  auto inner = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{6, 6, 2}), std::make_shared<Conv2D>(3, 3), std::make_shared<BatchNormalization>()},
      "base");
  auto a = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      inner, std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
  randomize(*a, 13);
  const fs::path file = temp_dir() / "petal_model.h5";
  save_weights(*a, file);
  CHECK(weight_file_format(file) == WeightFileFormat::keras_h5_legacy);
  {
    const hdf5::File h5 = hdf5::File::open(file);
    const hdf5::Group root = h5.root();
    CHECK(root.string_list_attribute("layer_names") == std::vector<std::string>{"base", "flatten", "dense"});
    // A trainable base: its trainable weights first, then the moving statistics.
    CHECK(root.group("base").string_list_attribute("weight_names") ==
          std::vector<std::string>{"conv2d/kernel:0", "conv2d/bias:0", "batch_normalization/gamma:0",
                                   "batch_normalization/beta:0", "batch_normalization/moving_mean:0",
                                   "batch_normalization/moving_variance:0"});
    CHECK(root.group("flatten").string_list_attribute("weight_names").empty());
    CHECK(hdf5::open_dataset(root, "base/conv2d/kernel:0").shape() == Shape{3, 3, 2, 3});
  }
  reset_layer_names();
  auto b = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{std::make_shared<InputLayer>(Shape{6, 6, 2}),
                                                                       std::make_shared<Conv2D>(3, 3),
                                                                       std::make_shared<BatchNormalization>()},
                                   "base"),
      std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
  load_weights(*b, file);
  check_same_weights(*a, *b);
  int temporaries = 0;
  for (const auto& e : fs::directory_iterator(file.parent_path()))
    temporaries += e.path().filename().string().find(".tmp.") != std::string::npos;
  CHECK(temporaries == 0);

  // A frozen base is written as Keras writes it: all non-trainable, creation order.
  a->children()[0]->set_trainable(false);
  save_weights(*a, file);
  const hdf5::File h5 = hdf5::File::open(file);
  CHECK(h5.root().group("base").string_list_attribute("weight_names")[2] == "batch_normalization/gamma:0");
}

TEST_CASE("the format comes from the file's bytes, not its name") {
  reset_layer_names();
  auto a = small_cnn();
  randomize(*a, 17);
  const fs::path disguised = temp_dir() / "really_safetensors.h5";
  const fs::path st = temp_dir() / "x.safetensors";
  save_weights(*a, st);
  fs::copy_file(st, disguised, fs::copy_options::overwrite_existing);
  CHECK(weight_file_format(disguised) == WeightFileFormat::safetensors);
  load_small_cnn_checked(*a, disguised);
  const fs::path h5_named_st = temp_dir() / "really_h5.safetensors";
  save_weights(*a, temp_dir() / "y.h5");
  fs::copy_file(temp_dir() / "y.h5", h5_named_st, fs::copy_options::overwrite_existing);
  CHECK(weight_file_format(h5_named_st) == WeightFileFormat::keras_h5_legacy);
}

TEST_CASE("bad HDF5 files give a FormatError naming the file, never a crash") {
  reset_layer_names();
  auto model = small_cnn();
  const fs::path dir = temp_dir();
  const fs::path good = dir / "good.h5";
  save_weights(*model, good);
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});

  auto write = [&](const fs::path& p, const std::string& content) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
  };
  SUBCASE("truncated at many lengths") {
    for (std::size_t length : {std::size_t{8}, std::size_t{64}, std::size_t{200}, bytes.size() / 4, bytes.size() / 2,
                               bytes.size() - 100, bytes.size() - 1}) {
      const fs::path p = dir / "truncated.h5";
      write(p, bytes.substr(0, length));
      INFO("length " << length);
      const std::string message = error_of([&] { load_weights(*model, p); });
      CHECK(message.find(p.string()) != std::string::npos);
    }
  }
  SUBCASE("random bytes, a directory, an empty file") {
    std::string noise(4096, '\0');
    manual_seed(1);
    for (auto& c : noise) c = static_cast<char>(default_generator().uniform_int(256));
    write(dir / "noise.h5", noise);
    CHECK(error_of([&] { load_weights(*model, dir / "noise.h5"); }).find("noise.h5") != std::string::npos);
    write(dir / "empty.h5", "");
    CHECK(error_of([&] { load_weights(*model, dir / "empty.h5"); }).find("empty.h5") != std::string::npos);
    CHECK(error_of([&] { load_weights(*model, dir); }).find("not a regular file") != std::string::npos);
    CHECK(error_of([&] { load_weights(*model, dir / "absent.h5"); }).find("no such file") != std::string::npos);
  }
  SUBCASE("HDF5 but not Keras; wrong types; names without groups") {
    { H5Writer w(dir / "plain.h5"); }
    CHECK(error_of([&] { load_weights(*model, dir / "plain.h5"); }).find("not Keras weights") != std::string::npos);
    {
      H5Writer w(dir / "lies.h5");
      H5Writer::fixed_strings(w.root(), "layer_names", {"conv2d", "ghost"});
      hid_t g = w.group("conv2d");
      H5Writer::fixed_strings(g, "weight_names", {"conv2d/kernel:0"});
      w.close_groups();
    }
    CHECK(error_of([&] { load_weights(*model, dir / "lies.h5"); }).find("has no dataset /conv2d/conv2d/kernel:0") !=
          std::string::npos);
    {
      H5Writer w(dir / "ints.h5");
      hsize_t dims[1] = {2};
      hid_t space = H5Screate_simple(1, dims, nullptr);
      hid_t attr = H5Acreate2(w.root(), "layer_names", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
      const int values[2] = {1, 2};
      H5Awrite(attr, H5T_NATIVE_INT, values);
      H5Aclose(attr), H5Sclose(space);
    }
    CHECK(error_of([&] { load_weights(*model, dir / "ints.h5"); }).find("values that are not strings") !=
          std::string::npos);
  }
}
