// safetensors: round trips, the real MobileNetV2 file, malformed files
// (FormatError, never a crash or an out-of-bounds read), and load_weights'
// single error listing every mismatch.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <sys/stat.h>

#include "core/error.hpp"
#include "nn/nn.hpp"
#include "tests/nn/temp_dir.hpp"
#include "tests/shared_data.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() { return test::nn_temp_dir("st"); }

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

// A file with the given header text and `data_bytes` zero bytes of data.
std::string make_file(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + std::string(data_bytes, '\0');
}

std::shared_ptr<Sequential> small_model(std::int64_t hidden = 4) {
  reset_layer_names();
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{3}), std::make_shared<Dense>(hidden, "relu"),
      std::make_shared<BatchNormalization>(), std::make_shared<Dense>(2, "softmax")});
}

}  // namespace

TEST_CASE("write -> read round trip is bit-exact for every dtype, with metadata") {
  const fs::path file = temp_dir() / "roundtrip.safetensors";
  Tensor f = uniform({3, 5}, -1e6, 1e6);
  Tensor d = normal({4}, 0, 1, default_generator(), DType::Float64);
  Tensor i = from_vector(std::vector<std::int64_t>{-5, 0, 1LL << 40});
  Tensor u = from_vector(std::vector<std::uint8_t>{0, 255, 7});
  Tensor strided = f.transpose(0, 1);  // stored contiguous
  write_safetensors(file, {{"f", f}, {"d", d}, {"i", i}, {"u", u}, {"t", strided}, {"empty", zeros({0, 3})}},
                    {{"classes", "a,b"}, {"quote\"d", "x\ny"}});
  SafetensorsReader r(file);
  REQUIRE(r.entries().size() == 6);
  CHECK(r.entries()[0].name == "f");  // file order is the given order
  CHECK(r.metadata().at("classes") == "a,b");
  CHECK(r.metadata().at("quote\"d") == "x\ny");
  CHECK(r.read("f").to_vector<float>() == f.to_vector<float>());
  CHECK(r.read("d").to_vector<double>() == d.to_vector<double>());
  CHECK(r.read("i").to_vector<std::int64_t>() == i.to_vector<std::int64_t>());
  CHECK(r.read("u").to_vector<std::uint8_t>() == u.to_vector<std::uint8_t>());
  CHECK(r.read("t").shape() == Shape{5, 3});
  CHECK(r.read("t").to_vector<float>() == strided.to_vector<float>());
  CHECK(r.read("empty").numel() == 0);
  // Data starts 8-byte aligned.
  const std::string bytes = read_all(file);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);
  CHECK_THROWS_AS(write_safetensors(file, {{"a", f}, {"a", f}}), ValueError);
}

TEST_CASE("save_weights -> load_weights restores every weight bit-exactly") {
  const fs::path file = temp_dir() / "model.safetensors";
  manual_seed(11);
  auto a = small_model();
  a->weights()[4].variable.mutable_data().copy_(uniform({4}, -2, 2));  // moving_mean
  save_weights(*a, file, {{"head", "dense"}});
  manual_seed(12);
  auto b = small_model();
  LoadReport report = load_weights(*b, file);
  CHECK(report.loaded.size() == a->weights().size());
  CHECK(report.metadata.at("head") == "dense");
  auto wa = a->weights(), wb = b->weights();
  for (std::size_t k = 0; k < wa.size(); ++k) {
    CHECK(wa[k].name == wb[k].name);
    CHECK(wa[k].variable.data().to_vector<float>() == wb[k].variable.data().to_vector<float>());
  }
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(file.parent_path()))
    files += e.path().filename().string().find(".tmp.") != std::string::npos;
  CHECK(files == 0);
}

TEST_CASE("loading a file with wrong shapes and missing names gives one error listing them all") {
  const fs::path file = temp_dir() / "mismatch.safetensors";
  auto a = small_model(6);  // dense/kernel [3, 6], BN of 6, dense_1/kernel [6, 2]
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& w : a->weights())
    if (w.name != "dense/bias") tensors.emplace_back(w.name, w.variable.data());
  tensors.emplace_back("stray/kernel", zeros({2}));
  write_safetensors(file, tensors);
  auto b = small_model(4);
  const auto before = b->weights()[0].variable.data().to_vector<float>();
  std::string message;
  try {
    load_weights(*b, file);
  } catch (const FormatError& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("mismatches") != std::string::npos);
  CHECK(message.find("\"dense/kernel\": shape [3, 6] in the file, [3, 4] in the model") != std::string::npos);
  CHECK(message.find("missing \"dense/bias\"") != std::string::npos);
  CHECK(message.find("batch_normalization/moving_variance") != std::string::npos);
  CHECK(message.find("\"dense_1/kernel\": shape [6, 2]") != std::string::npos);
  CHECK(message.find("unexpected \"stray/kernel\"") != std::string::npos);
  // Nothing was changed by the failed load.
  CHECK(b->weights()[0].variable.data().to_vector<float>() == before);

  // skip_mismatch loads what fits and reports the rest.
  LoadReport report = load_weights(*b, file, {.by_name = false, .skip_mismatch = true});
  CHECK(report.loaded == std::vector<std::string>{"dense_1/bias"});
  CHECK(report.skipped.size() == 8);
  // by_name ignores names on either side that the other lacks, but not wrong shapes.
  CHECK_THROWS_AS(load_weights(*b, file, {.by_name = true, .skip_mismatch = false}), FormatError);
}

TEST_CASE("the real MobileNetV2 file: header lists Conv1/kernel [3, 3, 3, 32] and 262 tensors") {
  const fs::path file = petal::test::mobilenet_weights_path();
  REQUIRE_MESSAGE(fs::exists(file), file.string(), " not found (PETAL_SHARED_DIR: the shared data folder)");
  SafetensorsReader r(file);
  CHECK(r.entries().size() == 262);
  const SafetensorsEntry* conv1 = r.find("Conv1/kernel");
  REQUIRE(conv1 != nullptr);
  CHECK(conv1->dtype == "F32");
  CHECK(conv1->shape == Shape{3, 3, 3, 32});
  REQUIRE(r.find("block_1_expand_BN/moving_mean") != nullptr);
  CHECK(r.find("predictions/kernel")->shape == Shape{1280, 1000});
  std::int64_t params = 0;
  for (const auto& e : r.entries()) params += shape_numel(e.shape);
  CHECK(params == 3538984);
  Tensor k = r.read(*conv1);
  CHECK(k.shape() == Shape{3, 3, 3, 32});
}

TEST_CASE("malformed files are FormatErrors naming the problem, never crashes") {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "bad.safetensors";
  auto expect_format_error = [&](const std::string& bytes, const std::string& needle) {
    write_all(file, bytes);
    std::string message;
    try {
      SafetensorsReader r(file);
      for (const auto& e : r.entries()) r.read(e);
    } catch (const FormatError& e) {
      message = e.what();
    }
    INFO("expected an error containing: " << needle << "; got: " << message);
    CHECK(message.find(needle) != std::string::npos);
  };
  expect_format_error("abc", "too short");
  expect_format_error(make_file(std::string(100, ' '), 0).substr(0, 8) + "{}", "header length");
  std::string huge(8, '\xff');
  expect_format_error(huge, "header length");
  expect_format_error(make_file("{\"a\":", 0), "invalid JSON");
  expect_format_error(make_file("[1, 2]", 0), "expected an object");
  expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "outside the data section");
  expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12");
  expect_format_error(make_file(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8), "unknown dtype");
  expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative integer");
  expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,8]}})", 8),
                      "needs 17179869184");
  expect_format_error(make_file(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
                      "overflows");
  expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "outside");
  expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "needs dtype, shape and data_offsets");
  expect_format_error(make_file(R"({"a":1,"a":2})", 0), "duplicate key");
  expect_format_error(make_file(std::string(200, '[') + std::string(200, ']'), 0), "nesting too deep");
  // A valid file cut short.
  const fs::path good = dir / "good.safetensors";
  write_safetensors(good, {{"w", ones({64})}});
  const std::string bytes = read_all(good);
  expect_format_error(bytes.substr(0, bytes.size() - 10), "outside the data section");
  CHECK_THROWS_AS(SafetensorsReader(dir / "does_not_exist.safetensors"), IOError);
}

TEST_CASE("checkpoints carry optimizer state, epoch and RNG state") {
  const fs::path file = temp_dir() / "ckpt.safetensors";
  auto model = small_model();
  Trainer trainer(model);
  auto adam = std::make_shared<Adam>(0.01);
  trainer.compile(adam, Loss::sparse_categorical_crossentropy());
  Batch batch{uniform({6, 3}, -1, 1), from_vector(std::vector<std::int64_t>{0, 1, 0, 1, 1, 0})};
  trainer.train_step(batch);
  trainer.train_step(batch);
  manual_seed(99);
  const std::uint64_t next_random = Generator(default_generator()).next_u64();
  save_checkpoint(file, *model, *adam, 3);
  default_generator().next_u64();

  auto restored = small_model();
  Adam adam2(0.01);
  CHECK(load_checkpoint(file, *restored, adam2) == 3);
  CHECK(adam2.iterations() == 2);
  CHECK(default_generator().next_u64() == next_random);
  CHECK(adam2.state().size() == adam->state().size());
  // A plain weights load of a checkpoint ignores the optimizer tensors.
  auto plain = small_model();
  CHECK_NOTHROW(load_weights(*plain, file));
  SGD sgd;
  CHECK_THROWS_AS(load_checkpoint(file, *plain, sgd), ValueError);
}

TEST_CASE("checkpoints of AdamW, RMSprop and Adagrad resume bit for bit") {
  using Make = std::function<std::shared_ptr<Optimizer>()>;
  const std::vector<Make> makes = {
      [] { return std::make_shared<AdamW>(0.01, 0.1); },
      [] { return std::make_shared<RMSprop>(0.01, RMSpropOptions{.momentum = 0.9, .centered = true}); },
      [] { return std::make_shared<Adagrad>(0.1); }};
  for (const Make& make : makes) {
    const fs::path file = temp_dir() / "ckpt_optimizers.safetensors";
    auto model = small_model();
    Trainer trainer(model);
    auto opt = make();
    INFO(opt->name());
    trainer.compile(opt, Loss::sparse_categorical_crossentropy());
    Batch batch{uniform({6, 3}, -1, 1), from_vector(std::vector<std::int64_t>{0, 1, 0, 1, 1, 0})};
    trainer.train_step(batch);
    trainer.train_step(batch);
    save_checkpoint(file, *model, *opt, 1);

    auto restored = small_model();
    auto opt2 = make();
    CHECK(load_checkpoint(file, *restored, *opt2) == 1);
    CHECK(opt2->iterations() == 2);
    CHECK(opt2->state().size() == opt->state().size());
    Trainer trainer2(restored);
    trainer2.compile(opt2, Loss::sparse_categorical_crossentropy());
    trainer.train_step(batch);
    trainer2.train_step(batch);
    const auto a = model->weights(), b = restored->weights();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      CHECK(a[i].variable.data().to_vector<float>() == b[i].variable.data().to_vector<float>());
    Adam adam;  // another optimizer's state is refused
    CHECK_THROWS_AS(load_checkpoint(file, *small_model(), adam), ValueError);
  }
}

TEST_CASE("only regular files are read: a directory or FIFO is an IOError naming it, never a garbage length") {
  const fs::path dir = temp_dir() / "a_directory.safetensors";
  fs::create_directories(dir);
  try {
    SafetensorsReader r(dir);
    FAIL("expected an IOError");
  } catch (const IOError& e) {
    CHECK(std::string(e.what()).find("a_directory.safetensors: not a regular file") != std::string::npos);
  }
  const fs::path fifo = temp_dir() / "pipe.safetensors";
  fs::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_AS(SafetensorsReader{fifo}, IOError);  // without blocking in open
  fs::remove(fifo);
  for (int size = 0; size < 8; ++size) {
    const fs::path shorter = temp_dir() / "short.safetensors";
    write_all(shorter, std::string(static_cast<std::size_t>(size), '\x01'));
    CHECK_THROWS_WITH_AS(SafetensorsReader{shorter}, doctest::Contains("too short"), FormatError);
  }
}

TEST_CASE("a header length over the cap is refused before the header is allocated") {
  // A sparse file big enough for the claimed header, so only the cap stops it.
  const fs::path file = temp_dir() / "huge_header.safetensors";
  const std::uint64_t claimed = kSafetensorsMaxHeaderBytes + 1;
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(claimed >> (8 * i));
  write_all(file, length);
  fs::resize_file(file, 8 + claimed);
  CHECK_THROWS_WITH_AS(SafetensorsReader{file}, doctest::Contains("exceeds the limit of 104857600 bytes"),
                       FormatError);
  fs::remove(file);
}

TEST_CASE("headers are strict JSON: leading zeros and lone surrogates are refused") {
  const fs::path file = temp_dir() / "strict.safetensors";
  auto message_of = [&](const std::string& header, std::size_t data) {
    write_all(file, make_file(header, data));
    try {
      SafetensorsReader r(file);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,08]}})", 8).find("leading zero") !=
        std::string::npos);
  CHECK(message_of(R"({"a\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8).find("surrogate") !=
        std::string::npos);
  CHECK(message_of(R"({"__metadata__":{"k":"\udc00"}})", 0).find("lone low surrogate") != std::string::npos);
}

TEST_CASE("checkpoint metadata out of range is rejected, not truncated by a cast") {
  const fs::path good = temp_dir() / "good_ckpt.safetensors";
  auto model = small_model();
  Adam adam(0.01);
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy());
  save_checkpoint(good, *model, adam, 1);
  auto rewrite = [&](const std::string& key, const std::string& value) {
    SafetensorsReader reader(good);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& e : reader.entries()) tensors.emplace_back(e.name, reader.read(e));
    Metadata meta = reader.metadata();
    meta[key] = value;
    const fs::path bad = temp_dir() / "bad_ckpt.safetensors";
    write_safetensors(bad, tensors, meta);
    return bad;
  };
  auto restored = small_model();
  Adam adam2(0.01);
  CHECK_THROWS_WITH_AS(load_checkpoint(rewrite("epoch", "4294967297"), *restored, adam2),
                       doctest::Contains("\"epoch\" = \"4294967297\" is not an integer in [0, 2147483647]"),
                       FormatError);
  CHECK_THROWS_AS(load_checkpoint(rewrite("epoch", "-1"), *restored, adam2), FormatError);
  CHECK_THROWS_AS(load_checkpoint(rewrite("optimizer_iterations", "99999999999999999999"), *restored, adam2),
                  FormatError);
  const std::string words = "0000000000000001 0000000000000002 0000000000000003 0000000000000004";
  CHECK_NOTHROW(load_checkpoint(rewrite("rng_state", words + " 0 0000000000000000"), *restored, adam2));
  for (const std::string& bad : {words + " 2 0", words + " 0 10000000000000000", "-" + words + " 0 0",
                                 words + " 0 0 trailing", words + " 0", "00000000000000001" + words.substr(16) + " 0 0 x"})
    CHECK_THROWS_WITH_AS(load_checkpoint(rewrite("rng_state", bad), *restored, adam2), doctest::Contains("rng_state"),
                         FormatError);
}
