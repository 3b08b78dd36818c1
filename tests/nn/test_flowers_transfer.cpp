// The flowers transfer-learning path of examples/ (transfer_model,
// flowers_common) on small subsets of the real shards: feature caching gives
// the same model as running the frozen base every step, a short run learns,
// fine-tuning keeps BatchNormalization in inference mode, and a saved model
// rebuilds itself from its metadata.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "autograd/variable.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "data/flowers.hpp"
#include "examples/flowers_common.hpp"
#include "examples/transfer_model.hpp"
#include "nn/weights_io.hpp"
#include "tests/nn/tensor_diff.hpp"
#include "tests/shared_data.hpp"

namespace fs = std::filesystem;
using namespace petal;
namespace ex = petal::examples;

using petal::test::max_abs_diff;

namespace {

using petal::test::shared_dir;
fs::path weights_path() { return petal::test::mobilenet_weights_path(); }
fs::path shard(const char* name) { return petal::test::flowers_dir() / name; }

std::vector<std::string> flower_classes() { return {data::kFlowerClasses.begin(), data::kFlowerClasses.end()}; }

// Rows [begin, end) of a set, copied.
ex::LabeledImages rows(const ex::LabeledImages& all, std::int64_t begin, std::int64_t end) {
  ex::LabeledImages out;
  out.pixels = all.pixels.slice(0, begin, end).contiguous();
  out.classes.assign(all.classes.begin() + begin, all.classes.begin() + end);
  return out;
}

ex::TransferModel frozen_model(int size, std::uint64_t seed) {
  manual_seed(seed);  // the head's initialisation
  ex::TransferModel m = ex::build_transfer_model(size, "flatten", flower_classes(), data::PixelScale::MinusOneOne);
  m.base->load_weights(weights_path());
  m.base->set_trainable(false);
  return m;
}

Tensor weight(const nn::Module& model, const std::string& name) {
  for (const auto& w : model.weights())
    if (w.name == name) return w.variable.data().clone();
  FAIL("no weight " << name);
  return {};
}

}  // namespace

TEST_CASE("feature caching gives the same model as running the frozen base every step") {
  const ex::LabeledImages shard0 = ex::read_labeled_shards({shard("flowers00-230.tfrec")}, 64);
  const ex::LabeledImages train = rows(shard0, 0, 40), val = rows(shard0, 40, 56);
  ex::TrainOptions options;
  options.epochs = 2;
  options.batch = 8;
  options.seed = 7;
  options.verbose = nn::Verbosity::Quiet;

  ex::TransferModel cached = frozen_model(64, 3);
  const ex::TrainOutcome with_cache = ex::train_transfer_model(cached, train, val, options);
  options.allow_cache = false;
  ex::TransferModel direct = frozen_model(64, 3);
  const ex::TrainOutcome without_cache = ex::train_transfer_model(direct, train, val, options);

  CHECK(with_cache.cache);
  CHECK_FALSE(without_cache.cache);
  REQUIRE(with_cache.history["loss"].size() == 2);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(with_cache.history["loss"][e] == doctest::Approx(without_cache.history["loss"][e]).epsilon(1e-4));
    CHECK(with_cache.history["val_loss"][e] == doctest::Approx(without_cache.history["val_loss"][e]).epsilon(1e-4));
    CHECK(with_cache.history["accuracy"][e] == without_cache.history["accuracy"][e]);
  }
  CHECK(max_abs_diff(weight(*cached.model, "dense/kernel"), weight(*direct.model, "dense/kernel")) < 1e-5);
  CHECK(with_cache.predicted == without_cache.predicted);
  // The head did train, and the frozen base did not change.
  CHECK(max_abs_diff(weight(*cached.model, "dense/kernel"), weight(*frozen_model(64, 3).model, "dense/kernel")) > 1e-3);
  CHECK(max_abs_diff(weight(*cached.model, "bn_Conv1/moving_mean"), weight(*direct.model, "bn_Conv1/moving_mean")) ==
        0.0);
}

TEST_CASE("a short frozen-base run on 2 shards learns well above chance") {
  // 80x80 keeps the test fast (also under ASan at -O1); MobileNetV2's
  // features still separate the flowers well at that size.
  const ex::LabeledImages train = ex::read_labeled_shards({shard("flowers03-230.tfrec")}, 80);
  const ex::LabeledImages val = rows(ex::read_labeled_shards({shard("flowers00-230.tfrec")}, 80), 0, 115);
  ex::TransferModel m = frozen_model(80, 42);
  ex::TrainOptions options;
  options.epochs = 3;
  options.batch = 32;
  options.verbose = nn::Verbosity::Quiet;
  const ex::TrainOutcome outcome = ex::train_transfer_model(m, train, val, options);
  CHECK(outcome.cache);
  MESSAGE("val_accuracy after 3 epochs on 230 images at 80x80: ", outcome.val_accuracy);
  CHECK(outcome.val_accuracy > 0.6);  // chance: 0.2
  std::int64_t total = 0;
  for (const auto& row : outcome.confusion)
    for (auto v : row) total += v;
  CHECK(total == val.size());
}

TEST_CASE("fine-tuning trains the convolutions with BatchNormalization frozen in inference mode") {
  const ex::LabeledImages shard0 = ex::read_labeled_shards({shard("flowers00-230.tfrec")}, 64);
  const ex::LabeledImages train = rows(shard0, 0, 16), val = rows(shard0, 16, 24);
  ex::TransferModel m = frozen_model(64, 5);
  m.base->set_trainable(true);
  m.base->freeze_batch_norm();
  // Everything but BN's gamma and beta (as many as the moving statistics).
  CHECK(m.base->count_trainable_params() == 2257984 - 2 * 34112);
  const Tensor kernel_before = weight(*m.model, "Conv1/kernel");
  const Tensor mean_before = weight(*m.model, "block_5_expand_BN/moving_mean");
  const Tensor gamma_before = weight(*m.model, "block_5_expand_BN/gamma");
  ex::TrainOptions options;
  options.epochs = 1;
  options.batch = 8;
  options.learning_rate = 1e-3;
  options.verbose = nn::Verbosity::Quiet;
  const ex::TrainOutcome outcome = ex::train_transfer_model(m, train, val, options);
  CHECK_FALSE(outcome.cache);  // nothing frozen in front of the head any more
  CHECK(max_abs_diff(weight(*m.model, "Conv1/kernel"), kernel_before) > 0.0);
  CHECK(max_abs_diff(weight(*m.model, "block_5_expand_BN/moving_mean"), mean_before) == 0.0);
  CHECK(max_abs_diff(weight(*m.model, "block_5_expand_BN/gamma"), gamma_before) == 0.0);
}

TEST_CASE("a saved transfer model rebuilds itself from its metadata") {
  const fs::path dir = fs::temp_directory_path() / ("petal_flowers_transfer_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ex::TransferModel m = ex::build_transfer_model(64, "gap", flower_classes(), data::PixelScale::ZeroOne);
  m.base->load_weights(weights_path());
  nn::save_weights(*m.model, dir / "model.safetensors", ex::transfer_metadata(m));

  ex::TransferModel loaded = ex::load_transfer_model(dir / "model.safetensors");
  CHECK(loaded.head == "gap");
  CHECK(loaded.input_size == 64);
  CHECK(loaded.scale == data::PixelScale::ZeroOne);
  CHECK(loaded.classes == flower_classes());
  const Tensor x = uniform({2, 64, 64, 3}, 0.0, 1.0);
  ag::NoGradGuard no_grad;
  CHECK(max_abs_diff((*m.model)(ag::Variable(x)).data(), (*loaded.model)(ag::Variable(x)).data()) < 1e-6);

  // The bare ImageNet weights are not a transfer model.
  CHECK_THROWS_AS(ex::load_transfer_model(weights_path()), FormatError);
  fs::remove_all(dir);
}

TEST_CASE("ImageRowsSource batches rows in TensorBatchSource's order, flipped on request") {
  ex::LabeledImages images;
  images.pixels = Tensor::empty({5, 2, 3, 3}, DType::UInt8);
  auto* p = images.pixels.data<std::uint8_t>();
  for (int i = 0; i < 5 * 18; ++i) p[i] = static_cast<std::uint8_t>(i);
  images.classes = {0, 1, 2, 3, 4};
  const Tensor targets = ex::one_hot(images.classes, 5);
  ex::ImageRowsSource source(images, targets, 2, true, 11, true, data::PixelScale::ZeroOne, false);
  nn::TensorBatchSource reference(images.pixels, targets, 2, true, 11, true);
  source.begin_epoch(1);
  reference.begin_epoch(1);
  int batches = 0;
  while (auto b = source.next()) {
    auto r = reference.next();
    REQUIRE(r.has_value());
    const auto got = b->x.contiguous().to_vector<float>();
    const auto want = r->x.contiguous().to_vector<std::uint8_t>();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i] / 255.0));
    CHECK(max_abs_diff(b->y, r->y) == 0.0);
    ++batches;
  }
  CHECK(batches == 2);  // 5 rows, batch 2, drop_remainder
  CHECK_FALSE(reference.next().has_value());

  // Flips mirror each row of pixels (and happen for some rows of 40 draws).
  ex::ImageRowsSource flipping(images, targets, 5, false, 3, false, data::PixelScale::ZeroOne, true);
  int flipped = 0;
  for (int epoch = 0; epoch < 8; ++epoch) {
    flipping.begin_epoch(epoch);
    const auto x = flipping.next()->x.contiguous().to_vector<float>();
    for (int i = 0; i < 5; ++i) {
      const float* img = x.data() + i * 18;
      const std::uint8_t* src = p + i * 18;
      const bool same = std::abs(img[0] - src[0] / 255.0f) < 1e-6f;
      const bool mirrored = std::abs(img[0] - src[6] / 255.0f) < 1e-6f;  // pixel (0, 2) -> (0, 0)
      CHECK((same || mirrored));
      flipped += mirrored;
    }
  }
  CHECK(flipped > 0);
  CHECK(flipped < 40);
}

TEST_CASE("ImageRowsSource crops, flips and brightens each image as RowAugmentation asks") {
  // 3 images of 4x5 pixels, every value distinct within an image, all in 80..189.
  ex::LabeledImages images;
  images.pixels = Tensor::empty({3, 4, 5, 3}, DType::UInt8);
  auto* p = images.pixels.data<std::uint8_t>();
  for (int i = 0; i < 3 * 60; ++i) p[i] = static_cast<std::uint8_t>(80 + i % 60 + 50 * (i / 60 == 2));
  images.classes = {0, 1, 2};
  const Tensor targets = ex::one_hot(images.classes, 5);
  auto source_value = [&](int image, int y, int x, int c) { return p[((image * 4 + y) * 5 + x) * 3 + c] / 255.0f; };

  // Centre crop: the 2x2 window at ((4 - 2) / 2, (5 - 2) / 2) = (1, 1).
  ex::RowAugmentation centre;
  centre.crop = 2;
  ex::ImageRowsSource centred(images, targets, 3, false, 1, false, data::PixelScale::ZeroOne, centre);
  centred.begin_epoch(0);
  const nn::Batch b = *centred.next();
  CHECK(b.x.shape() == Shape{3, 2, 2, 3});
  const auto x = b.x.contiguous().to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int y = 0; y < 2; ++y)
      for (int xx = 0; xx < 2; ++xx)
        for (int c = 0; c < 3; ++c)
          CHECK(x[((i * 2 + y) * 2 + xx) * 3 + c] == doctest::Approx(source_value(i, 1 + y, 1 + xx, c)));

  // Random crops with flips: every output is some window of its own image,
  // mirrored or not; several windows show up; a seed and an epoch repeat.
  ex::RowAugmentation random;
  random.crop = 2;
  random.random_crop = true;
  random.random_flip = true;
  std::set<std::pair<int, int>> windows;
  int mirrored = 0;
  for (int epoch = 0; epoch < 6; ++epoch) {
    ex::ImageRowsSource a(images, targets, 3, false, 9, false, data::PixelScale::ZeroOne, random);
    ex::ImageRowsSource again(images, targets, 3, false, 9, false, data::PixelScale::ZeroOne, random);
    a.begin_epoch(epoch);
    again.begin_epoch(epoch);
    const Tensor got = a.next()->x;
    CHECK(max_abs_diff(got, again.next()->x) == 0.0);
    const auto v = got.contiguous().to_vector<float>();
    for (int i = 0; i < 3; ++i) {
      bool found = false;
      for (int top = 0; top <= 2 && !found; ++top)
        for (int left = 0; left <= 3 && !found; ++left)
          for (int flip = 0; flip < 2 && !found; ++flip) {
            bool same = true;
            for (int y = 0; y < 2; ++y)
              for (int xx = 0; xx < 2; ++xx)
                for (int c = 0; c < 3; ++c)
                  same = same && v[((i * 2 + y) * 2 + xx) * 3 + c] ==
                                     doctest::Approx(source_value(i, top + y, left + (flip ? 1 - xx : xx), c));
            if (same) {
              found = true;
              windows.insert({top, left});
              mirrored += flip;
            }
          }
      CHECK(found);
    }
  }
  CHECK(windows.size() > 1);
  CHECK(mirrored > 0);

  // Brightness: one delta per image, within +-0.2 (no value saturates here).
  ex::RowAugmentation bright;
  bright.max_brightness_delta = 0.2f;
  ex::ImageRowsSource brightened(images, targets, 3, false, 4, false, data::PixelScale::ZeroOne, bright);
  brightened.begin_epoch(0);
  const auto v = brightened.next()->x.contiguous().to_vector<float>();
  std::set<int> deltas;
  for (int i = 0; i < 3; ++i) {
    const float delta = v[i * 60] - source_value(i, 0, 0, 0);
    CHECK(std::abs(delta) <= 0.2f + 1.0f / 255);
    deltas.insert(static_cast<int>(std::lround(delta * 255)));
    for (int k = 0; k < 60; ++k) CHECK(std::abs(v[i * 60 + k] - (p[i * 60 + k] / 255.0f + delta)) < 1e-5f);
  }
  CHECK(deltas.size() > 1);

  // A crop larger than the images is refused.
  ex::RowAugmentation too_big;
  too_big.crop = 5;
  CHECK_THROWS_AS(ex::ImageRowsSource(images, targets, 3, false, 1, false, data::PixelScale::ZeroOne, too_big),
                  ValueError);
}
