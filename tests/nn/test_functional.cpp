// The functional API (nn::Input, layers called on symbolic tensors, nn::Model,
// merge layers), subclassed modules with lazily built children, the training
// flag, structural weight paths and summary()'s "Connected to" column.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include "autograd/conv_functions.hpp"
#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "nn/nn.hpp"
#include "nn/mobilenet_v2.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("petal_functional_" + std::to_string(::getpid()) + "_" + name);
}

// Two inputs, one Dense shared by both, every merge layer, two outputs.
std::shared_ptr<Model> two_tower_model() {
  auto left = Input({6}, "left");
  auto right = Input({6}, "right");
  auto shared = layer<Dense>(5, "tanh");
  auto a = shared(left);
  auto b = shared(right);
  auto joined = layer<Concatenate>()({a, b});
  DenseOptions class_options;
  class_options.name = "class";
  auto classes = layer<Dense>(3, "softmax", class_options)(joined);
  auto diff = layer<Subtract>()({a, b});
  auto product = layer<Multiply>()({diff, layer<Maximum>()({a, b})});
  auto mixed = layer<Average>()({product, layer<Add>()({a, b}), layer<Minimum>()({a, b})});
  DenseOptions score_options;
  score_options.name = "score";
  auto score = layer<Dense>(1, ActivationSpec{}, score_options)(mixed);
  return std::make_shared<Model>(std::vector{left, right}, std::vector{classes, score}, "two_tower");
}

void to_float64(Module& m) {
  for (auto& w : m.weights()) w.variable.set_data(w.variable.data().to(DType::Float64));
}

Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::Float32) {
  Generator gen(seed);
  return uniform(shape, -1.0, 1.0, gen).to(dtype);
}

// Values in [0.5, 1.5): moving statistics that change the result.
void set_positive(ag::Variable v, std::uint64_t seed) {
  Generator gen(seed);
  v.mutable_data().copy_(uniform(v.shape(), 0.5, 1.5, gen));
}

// sum(out1 * w1) + sum(out2 * w2): a scalar that reaches both outputs.
ag::Variable two_output_objective(Model& model, const ag::Variable& x1, const ag::Variable& x2) {
  const auto outs = model({x1, x2});
  const Tensor w1 = random_tensor(outs[0].shape(), 11, outs[0].dtype());
  const Tensor w2 = random_tensor(outs[1].shape(), 12, outs[1].dtype());
  return ag::add(ag::sum(ag::mul(outs[0], ag::Variable(w1))), ag::sum(ag::mul(outs[1], ag::Variable(w2))));
}

// Records the mode of every call.
class ModeProbe : public Module {
 public:
  ModeProbe() : Module("ModeProbe") {}
  std::vector<bool> seen;

 protected:
  Shape build_impl(const Shape& input_shape) override { return input_shape; }
  ag::Variable forward(const ag::Variable& x) override {
    seen.push_back(training());
    return x;
  }
};

// A subclassed module: children declared in the constructor, shapes learned
// on the first call.
class SmallConvNet : public Module {
 public:
  explicit SmallConvNet(std::int64_t classes) : Module("SmallConvNet") {
    ConvOptions conv_options;
    conv_options.padding = Padding::Same;
    conv_ = add_child(layer<Conv2D>(4, 3, conv_options));
    bn_ = add_child(layer<BatchNormalization>());
    pool_ = add_child(layer<GlobalAveragePooling2D>());
    head_ = add_child(layer<Dense>(classes));
  }

 protected:
  ag::Variable forward(const ag::Variable& x) override {
    return (*head_)((*pool_)(ag::relu((*bn_)((*conv_)(x)))));
  }

 private:
  std::shared_ptr<Conv2D> conv_;
  std::shared_ptr<BatchNormalization> bn_;
  std::shared_ptr<GlobalAveragePooling2D> pool_;
  std::shared_ptr<Dense> head_;
};

}  // namespace

TEST_CASE("a two-input, two-output graph with a shared layer: shapes, layers, gradients") {
  auto model = two_tower_model();
  CHECK(model->output_shapes() == std::vector<Shape>{{3}, {1}});
  CHECK(model->input_shapes() == std::vector<Shape>{{6}, {6}});
  // The shared Dense is one layer with one set of weights.
  std::size_t dense_kernels = 0;
  for (const auto& w : model->weights()) dense_kernels += w.path.find("/kernel") != std::string::npos;
  CHECK(dense_kernels == 3);
  CHECK(model->count_params() == (6 * 5 + 5) + (10 * 3 + 3) + (5 * 1 + 1));
  CHECK(model->children().front()->name() == "left");
  CHECK(model->get_layer("score")->type_name() == "Dense");
  CHECK(model->get_layer("concatenate")->type_name() == "Concatenate");  // its key, whatever its display name
  CHECK_NOTHROW(Trainer{model});  // two inputs, two outputs: named batches (trainer.hpp, test_feature_source.cpp)
  CHECK_THROWS_AS(model->get_layer("nope"), ValueError);

  // Gradients with respect to both inputs, in float64.
  to_float64(*model);
  ag::Variable x1(random_tensor({2, 6}, 1, DType::Float64), true);
  ag::Variable x2(random_tensor({2, 6}, 2, DType::Float64), true);
  auto fn = [&](const std::vector<ag::Variable>& v) { return two_output_objective(*model, v[0], v[1]); };
  const ag::GradcheckResult inputs = ag::gradcheck(fn, {x1, x2});
  CHECK_MESSAGE(inputs.ok, inputs.message);

  // The shared kernel gets the sum of both calls' gradients: compare with
  // central differences on a few of its elements.
  model->zero_grad();
  ag::Variable loss = two_output_objective(*model, x1, x2);
  loss.backward();
  ag::Variable kernel;
  for (const auto& w : model->weights())
    if (w.path == "dense/kernel") kernel = w.variable;
  REQUIRE(kernel.defined());
  REQUIRE(kernel.has_grad());
  const std::vector<double> analytic = kernel.grad().to_vector<double>();
  for (std::int64_t i : {0, 7, 29}) {
    const double eps = 1e-6;
    Tensor& w = kernel.mutable_data();
    double* p = static_cast<double*>(w.raw_data()) + i;
    const double saved = *p;
    ag::NoGradGuard no_grad;
    *p = saved + eps;
    const double up = two_output_objective(*model, x1, x2).data().item<double>();
    *p = saved - eps;
    const double down = two_output_objective(*model, x1, x2).data().item<double>();
    *p = saved;
    CHECK(analytic[static_cast<std::size_t>(i)] == doctest::Approx((up - down) / (2 * eps)).epsilon(1e-6));
  }
}

TEST_CASE("a two-input, two-output graph trains with a custom loop") {
  auto model = two_tower_model();
  Adam optimizer(model->trainable_parameters(), 0.02);
  const Tensor x1 = random_tensor({16, 6}, 3), x2 = random_tensor({16, 6}, 4);
  std::vector<std::int64_t> labels(16);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  const Tensor classes = from_vector(labels, {16});
  const Tensor scores = random_tensor({16, 1}, 5);
  const Loss ce = Loss::sparse_categorical_crossentropy();
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    optimizer.zero_grad();
    const auto outs = (*model)({ag::Variable(x1), ag::Variable(x2)}, /*training=*/true);
    ag::Variable error = ag::sub(outs[1], ag::Variable(scores));
    ag::Variable loss = ag::add(ce(outs[0], classes, false), ag::mean(ag::mul(error, error)));
    loss.backward();
    clip_grad_norm(model->trainable_parameters(), 5.0);
    optimizer.step();
    (step == 0 ? first : last) = loss.data().item<float>();
  }
  MESSAGE("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
}

TEST_CASE("the same functional model built twice in one process loads the other's weights bit-exactly") {
  auto first = two_tower_model();
  auto second = two_tower_model();  // other automatic names: dense_1, concatenate_1, ...
  CHECK(first->children()[2]->name() != second->children()[2]->name());
  const auto path = temp_file("twice.safetensors");
  save_weights(*first, path);
  load_weights(*second, path);
  const auto a = first->weights(), b = second->weights();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].path == b[i].path);
    CHECK(a[i].variable.data().to_vector<float>() == b[i].variable.data().to_vector<float>());
  }
  const ag::Variable x1(random_tensor({3, 6}, 6)), x2(random_tensor({3, 6}, 7));
  const auto ya = (*first)({x1, x2}), yb = (*second)({x1, x2});
  CHECK(ya[0].data().to_vector<float>() == yb[0].data().to_vector<float>());
  CHECK(ya[1].data().to_vector<float>() == yb[1].data().to_vector<float>());
  std::filesystem::remove(path);
}

TEST_CASE("files keyed by display names (written before structural paths) still load") {
  reset_layer_names();
  auto make = [] {
    return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        std::make_shared<InputLayer>(Shape{4}), std::make_shared<Dense>(3, "relu"), std::make_shared<Dense>(2)});
  };
  make();                   // dense, dense_1
  auto old_model = make();  // dense_2, dense_3: its old files used these names
  // An old file: keyed by display names.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& w : old_model->weights()) tensors.emplace_back(w.name, w.variable.data());
  CHECK(tensors[0].first == "dense_2/kernel");
  const auto path = temp_file("display_names.safetensors");
  write_safetensors(path, tensors, {});
  // The instance that wrote it reads it back by display name.
  const auto before = old_model->weights()[0].variable.data().to_vector<float>();
  old_model->weights()[0].variable.mutable_data().copy_(zeros({4, 3}));
  const LoadReport report = load_weights(*old_model, path);
  CHECK(report.loaded == std::vector<std::string>{"dense_2/kernel", "dense_2/bias", "dense_3/kernel", "dense_3/bias"});
  CHECK(old_model->weights()[0].variable.data().to_vector<float>() == before);
  // Another instance matches neither its paths (dense/...) nor its display
  // names (dense_4/...): refused, with what is missing.
  auto other = make();
  try {
    load_weights(*other, path);
    FAIL("no error");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).find("missing \"dense/kernel\"") != std::string::npos);
  }
  // Saved again, the file is keyed by paths and any instance reads it.
  save_weights(*old_model, path);
  load_weights(*other, path);
  CHECK(other->weights()[0].variable.data().to_vector<float>() == before);
  std::filesystem::remove(path);
}

TEST_CASE("a checkpoint of one instance resumes in another: optimizer slots follow the paths") {
  auto first = two_tower_model();
  auto second = two_tower_model();
  Adam opt_a(first->trainable_parameters(), 0.01);
  const ag::Variable x1(random_tensor({4, 6}, 8)), x2(random_tensor({4, 6}, 9));
  for (int i = 0; i < 3; ++i) {
    opt_a.zero_grad();
    two_output_objective(*first, x1, x2).backward();
    opt_a.step();
  }
  const auto path = temp_file("checkpoint.safetensors");
  save_checkpoint(path, *first, opt_a, 3);
  Adam opt_b(second->trainable_parameters(), 0.01);
  CHECK(load_checkpoint(path, *second, opt_b) == 3);
  CHECK(opt_b.iterations() == 3);
  // One more step on each gives the same weights.
  opt_a.zero_grad();
  two_output_objective(*first, x1, x2).backward();
  opt_a.step();
  opt_b.zero_grad();
  two_output_objective(*second, x1, x2).backward();
  opt_b.step();
  const auto a = first->weights(), b = second->weights();
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(a[i].variable.data().to_vector<float>() == b[i].variable.data().to_vector<float>());
  std::filesystem::remove(path);
}

TEST_CASE("a subclassed module declares its children in the constructor and builds them on first call") {
  auto net = std::make_shared<SmallConvNet>(2);
  CHECK_FALSE(net->built());
  CHECK(net->count_params() == 0);
  CHECK(net->children().size() == 4);
  const ag::Variable y = (*net)(ag::Variable(random_tensor({2, 8, 8, 3}, 10)));
  CHECK(y.shape() == Shape{2, 2});
  CHECK(net->output_shape() == Shape{2});
  CHECK(net->count_params() == (3 * 3 * 3 * 4 + 4) + 4 * 4 + (4 * 2 + 2));
  std::vector<std::string> paths;
  for (const auto& w : net->weights()) paths.push_back(w.path);
  CHECK(paths == std::vector<std::string>{"conv2d/kernel", "conv2d/bias", "batch_normalization/gamma",
                                          "batch_normalization/beta", "batch_normalization/moving_mean",
                                          "batch_normalization/moving_variance", "dense/kernel", "dense/bias"});

  // Called symbolically before any data: the output shape comes from a
  // one-sample probe.
  auto fresh = std::make_shared<SmallConvNet>(3);
  auto image = Input({8, 8, 3});
  auto out = (*fresh)(image);
  CHECK(out.shape() == Shape{3});
  Model wrapped(image, out, "wrapped");
  CHECK(wrapped.count_params() == (3 * 3 * 3 * 4 + 4) + 4 * 4 + (4 * 3 + 3));
  // Paths nest: the module's key, then its children's.
  CHECK(wrapped.weights().front().path == "small_conv_net/conv2d/kernel");
  // The probe ran in inference mode: the moving statistics did not move.
  for (const auto& w : wrapped.weights())
    if (w.path.find("moving_mean") != std::string::npos) {
      const auto values = w.variable.data().to_vector<float>();
      CHECK(std::all_of(values.begin(), values.end(), [](float v) { return v == 0.0f; }));
    }
}

TEST_CASE("snake_case gives Keras's automatic base names") {
  CHECK(snake_case("SmallConvNet") == "small_conv_net");
  CHECK(snake_case("GlobalAveragePooling2D") == "global_average_pooling2d");
  CHECK(snake_case("Conv2D") == "conv2d");
  CHECK(snake_case("ReLU") == "re_lu");
  CHECK(snake_case("BatchNormalization") == "batch_normalization");
  CHECK(snake_case("Dense") == "dense");
}

TEST_CASE("training flag: fit trains, evaluate/predict and direct calls infer, explicit training wins") {
  auto probe = std::make_shared<ModeProbe>();
  auto x = Input({2});
  auto h = (*probe)(x);
  auto y = layer<Dense>(2, "softmax")(h);
  auto model = std::make_shared<Model>(x, y, "probed");
  probe->seen.clear();

  const Tensor features = random_tensor({8, 2}, 13);
  const Tensor labels = from_vector(std::vector<std::int64_t>{0, 1, 0, 1, 0, 1, 0, 1}, {8});
  TensorBatchSource source(features, labels, 4);
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy());
  FitOptions fit_options;
  fit_options.verbose = Verbosity::Quiet;
  trainer.fit(source, fit_options);
  CHECK(probe->seen == std::vector<bool>{true, true});
  probe->seen.clear();
  trainer.evaluate(source);
  trainer.predict(features, 4);
  CHECK(probe->seen == std::vector<bool>{false, false, false, false});
  probe->seen.clear();

  (*model)(ag::Variable(features));
  (*model)(ag::Variable(features), /*training=*/true);
  model->train();
  (*model)(ag::Variable(features));
  (*model)(ag::Variable(features), /*training=*/false);
  model->eval();
  CHECK(probe->seen == std::vector<bool>{false, true, true, false});

  // Dropout follows the same flag.
  auto dropout = std::make_shared<Dropout>(0.5, 7);
  const ag::Variable ones_in(ones({4, 64}));
  CHECK((*dropout)(ones_in).data().to_vector<float>() == ones_in.data().to_vector<float>());
  CHECK((*dropout)(ones_in, true).data().to_vector<float>() != ones_in.data().to_vector<float>());
}

TEST_CASE("Model trains with fit, saves and loads like Sequential") {
  auto image = Input({6, 6, 2});
  ConvOptions same;
  same.padding = Padding::Same;
  same.use_bias = false;
  auto c = layer<Conv2D>(4, 3, same)(image);
  auto n = layer<BatchNormalization>()(c);
  auto r = layer<ReLU>(6.0)(n);
  auto s = layer<Add>()({r, layer<Conv2D>(4, 1)(image)});
  auto f = layer<Flatten>()(s);
  auto out = layer<Dense>(2, "softmax")(f);
  auto model = std::make_shared<Model>(image, out);
  CHECK(model->logits_activation() == ActivationKind::Softmax);

  const Tensor features = random_tensor({16, 6, 6, 2}, 14);
  std::vector<std::int64_t> labels(16);
  for (std::size_t i = 0; i < 16; ++i) labels[i] = static_cast<std::int64_t>(i % 2);
  TensorBatchSource source(features, from_vector(labels, {16}), 8);
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy());
  FitOptions fit_options;
  fit_options.epochs = 5;
  fit_options.verbose = Verbosity::Quiet;
  const History history = trainer.fit(source, fit_options);
  CHECK(history["loss"].back() < history["loss"].front());

  const auto path = temp_file("fit.safetensors");
  save_weights(*model, path);
  auto image2 = Input({6, 6, 2});
  auto c2 = layer<Conv2D>(4, 3, same)(image2);
  auto r2 = layer<ReLU>(6.0)(layer<BatchNormalization>()(c2));
  auto s2 = layer<Add>()({r2, layer<Conv2D>(4, 1)(image2)});
  auto out2 = layer<Dense>(2, "softmax")(layer<Flatten>()(s2));
  Model copy(image2, out2);
  load_weights(copy, path);
  const ag::Variable x(features);
  CHECK((*model)(x).data().to_vector<float>() == copy(x).data().to_vector<float>());
  std::filesystem::remove(path);
}

TEST_CASE("fused Conv -> BN -> ReLU6 chains equal the layers run one by one") {
  for (const bool depthwise : {false, true}) {
    CAPTURE(depthwise);
    auto image = Input({9, 7, 3});
    auto padded = layer<ZeroPadding2D>(1, 1, 0, 1)(image);  // "same" for 3x3 stride 2 at 9x7
    SymbolicTensor c;
    if (depthwise) {
      DepthwiseConvOptions o;
      o.strides = 2;
      o.use_bias = false;
      c = layer<DepthwiseConv2D>(3, o)(padded);
    } else {
      ConvOptions o;
      o.strides = 2;
      o.use_bias = false;
      c = layer<Conv2D>(5, 3, o)(padded);
    }
    auto bn = layer<BatchNormalization>()(c);
    auto out = layer<ReLU>(6.0)(bn);
    Model model(image, out);
    // Non-trivial moving statistics.
    for (const auto& w : model.weights())
      if (!w.is_parameter) set_positive(w.variable, 15);
    const ag::Variable x(random_tensor({2, 9, 7, 3}, 16));
    ag::Variable step = x;
    for (std::size_t i = 1; i < model.children().size(); ++i) step = (*model.children()[i])(step);
    const auto fused = model(x).data().to_vector<float>();
    const auto layered = step.data().to_vector<float>();
    REQUIRE(fused.size() == layered.size());
    for (std::size_t i = 0; i < fused.size(); ++i) CHECK(fused[i] == doctest::Approx(layered[i]).epsilon(1e-5));
  }
}

TEST_CASE("MobileNetV2 on the functional API computes what the hand-written fused chain computes, bit for bit") {
  MobileNetV2Options options;
  options.input_shape = {64, 48, 3};
  options.alpha = 0.35;
  options.classes = 7;
  MobileNetV2 model(options);
  for (const auto& w : model.weights())
    if (!w.is_parameter) set_positive(w.variable, 17);
  const ag::Variable x(random_tensor({2, 64, 48, 3}, 18));

  // The forward MobileNetV2 ran before it was a functional model: one
  // conv_batch_norm per convolution, "same" padding throughout.
  auto unit = [&](const ag::Variable& in, const std::string& conv_name, const std::string& bn_name, bool relu6) {
    const Module& conv = *model.get_layer(conv_name);
    auto* bn = dynamic_cast<BatchNormalization*>(model.get_layer(bn_name).get());
    ag::Conv2dOptions o;
    ag::ConvKind kind = ag::ConvKind::Conv2d;
    ag::Variable kernel;
    if (const auto* regular = dynamic_cast<const Conv2D*>(&conv)) {
      o.stride_h = regular->options().strides.h, o.stride_w = regular->options().strides.w;
      kernel = regular->kernel();
    } else {
      const auto& dw = dynamic_cast<const DepthwiseConv2D&>(conv);
      o.stride_h = dw.options().strides.h, o.stride_w = dw.options().strides.w;
      kernel = dw.depthwise_kernel();
      kind = ag::ConvKind::Depthwise;
    }
    o.padding = Padding::Same;
    ag::BatchNormOptions b;
    b.training = false;
    b.momentum = 0.999;
    b.epsilon = 1e-3;
    ag::Variable mean = bn->moving_mean(), variance = bn->moving_variance();
    return ag::conv_batch_norm(kind, in, kernel, bn->gamma(), bn->beta(), mean.mutable_data(), variance.mutable_data(),
                               o, b, relu6);
  };
  const int strides[17] = {1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1};
  ag::Variable y = unit(x, "Conv1", "bn_Conv1", true);
  for (int id = 0; id < 17; ++id) {
    const std::string p = id == 0 ? "expanded_conv_" : "block_" + std::to_string(id) + "_";
    ag::Variable h = id == 0 ? y : unit(y, p + "expand", p + "expand_BN", true);
    h = unit(unit(h, p + "depthwise", p + "depthwise_BN", true), p + "project", p + "project_BN", false);
    const bool residual = strides[id] == 1 && h.shape()[3] == y.shape()[3];
    y = residual ? ag::add(y, h) : h;
  }
  y = unit(y, "Conv_1", "Conv_1_bn", true);
  y = (*model.get_layer("predictions"))((*model.get_layer("global_average_pooling2d"))(y));
  CHECK(model(x).data().to_vector<float>() == y.data().to_vector<float>());
}

TEST_CASE("summary(): Keras's parameter counts, the Connected to column, aligned columns") {
  MobileNetV2 mobilenet(Shape{224, 224, 3}, 1.0, true);
  const std::string s = mobilenet.summary();
  // tf.keras.applications.MobileNetV2(weights=None).summary()
  CHECK(s.find("Total params: 3,538,984") != std::string::npos);
  CHECK(s.find("Trainable params: 3,504,872") != std::string::npos);
  CHECK(s.find("Non-trainable params: 34,112") != std::string::npos);
  CHECK(s.find("Connected to") != std::string::npos);
  CHECK(s.find("block_2_add (Add)") != std::string::npos);
  CHECK(s.find("block_1_project_BN[0][0]") != std::string::npos);

  // A long name in a Sequential keeps every column where the header puts it.
  auto base = std::make_shared<MobileNetV2>(Shape{96, 96, 3}, 1.0, false);
  Sequential lab({base, std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")}, "a_model_with_a_long_name");
  std::istringstream lines(lab.summary());
  std::string line;
  std::size_t shape_column = std::string::npos, params_column = std::string::npos;
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.find("Layer (type)") != std::string::npos) {
      shape_column = line.find("Output Shape");
      params_column = line.find("Param #");
    } else if (line.find("(None") != std::string::npos) {
      ++rows;
      CHECK(line.find("(None") == shape_column);
      CHECK(line.find_first_not_of(' ', line.find(')', shape_column) + 1) == params_column);
    }
  }
  CHECK(rows == 3);
}

TEST_CASE("bad graphs give one clear error naming the layers") {
  SUBCASE("mismatched merge shapes") {
    auto x = Input({4});
    auto a = layer<Dense>(3, ActivationSpec{}, DenseOptions{.name = "narrow"})(x);
    auto b = layer<Dense>(5, ActivationSpec{}, DenseOptions{.name = "wide"})(x);
    try {
      layer<Add>("sum")({a, b});
      FAIL("no error");
    } catch (const ShapeError& e) {
      const std::string m = e.what();
      CHECK(m.find("sum") != std::string::npos);
      CHECK(m.find("narrow[0][0]") != std::string::npos);
      CHECK(m.find("wide[0][0]") != std::string::npos);
    }
    CHECK_THROWS_AS(layer<Concatenate>()({Input({2, 3}), Input({4, 5})}), ShapeError);
    CHECK_THROWS_AS(layer<Subtract>()({a, a, a}), ValueError);
  }
  SUBCASE("an input not connected to the outputs") {
    auto used = Input({2}, "used");
    auto unused = Input({2}, "unused");
    auto y = layer<Dense>(1)(used);
    try {
      Model({used, unused}, {y}, "m");
      FAIL("no error");
    } catch (const ValueError& e) {
      CHECK(std::string(e.what()).find("\"unused\" is not connected") != std::string::npos);
    }
  }
  SUBCASE("an output that needs an input the model does not list") {
    auto a = Input({2}, "a");
    auto b = Input({2}, "b");
    auto y = layer<Add>()({a, b});
    try {
      Model(a, y, "m");
      FAIL("no error");
    } catch (const ValueError& e) {
      CHECK(std::string(e.what()).find("\"b\", which is not among the model's inputs") != std::string::npos);
    }
  }
  SUBCASE("a cycle: a container inside itself") {
    auto outer = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{}, "outer");
    auto inner = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{}, "inner");
    outer->add(inner);
    try {
      inner->add(outer);
      FAIL("no error");
    } catch (const ValueError& e) {
      const std::string m = e.what();
      CHECK(m.find("cycle") != std::string::npos);
      CHECK(m.find("outer") != std::string::npos);
      CHECK(m.find("inner") != std::string::npos);
    }
    CHECK_THROWS_AS(outer->add(outer), ValueError);
  }
  SUBCASE("a layer not owned by a shared_ptr, duplicate names, wrong inputs") {
    Dense on_stack(2);
    CHECK_THROWS_AS(on_stack(Input({3})), ValueError);
    auto x = Input({3});
    auto y = layer<Dense>(2, ActivationSpec{}, DenseOptions{.name = "twin"})(x);
    auto z = layer<Dense>(2, ActivationSpec{}, DenseOptions{.name = "twin"})(y);
    CHECK_THROWS_AS(Model(x, z), ValueError);
    auto dense = layer<Dense>(2);
    auto w = dense(x);
    Model ok(x, w);
    CHECK_THROWS_AS(ok(ag::Variable(ones({2, 4}))), ShapeError);
    CHECK_THROWS_AS(Model(y, w), ValueError);  // an input that does not come from nn::Input
  }
}
