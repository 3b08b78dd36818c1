// nn::TensorBoard: the event files of a short fit() read back with petal's own
// TFRecord reader (CRCs checked) and protobuf decoder; names, the first
// record's file_version, Keras 3's tags and History's values.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/event_file.hpp"
#include "data/tfrecord.hpp"
#include "nn/nn.hpp"
#include "tests/nn/temp_dir.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// tag -> [(step, value)] of every scalar after the first record.
using Series = std::map<std::string, std::vector<std::pair<std::int64_t, float>>>;

Series read_series(const fs::path& file) {
  const std::vector<data::Event> events = data::read_event_file(file);
  REQUIRE(!events.empty());
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].scalars.empty());
  CHECK(events[0].wall_time > 1.6e9);
  Series series;
  for (std::size_t i = 1; i < events.size(); ++i) {
    CHECK(events[i].file_version.empty());
    CHECK(events[i].wall_time >= events[0].wall_time);
    REQUIRE(events[i].scalars.size() == 1);
    series[events[i].scalars[0].tag].emplace_back(events[i].step, events[i].scalars[0].value);
  }
  return series;
}

std::vector<std::pair<std::int64_t, float>> per_epoch(const std::vector<double>& values) {
  std::vector<std::pair<std::int64_t, float>> out;
  for (std::size_t e = 0; e < values.size(); ++e) out.emplace_back(static_cast<std::int64_t>(e), static_cast<float>(values[e]));
  return out;
}

struct Run {
  std::shared_ptr<TensorBoard> tb;
  History history;
  std::int64_t steps = 0;
};

Run fit_with_tensorboard(const fs::path& log_dir, TensorBoard::Options options, bool validation) {
  reset_layer_names();
  manual_seed(5);
  std::vector<float> xs;
  std::vector<float> ys;  // one-hot rows (AUC wants them)
  for (int i = 0; i < 40; ++i) {
    xs.push_back(static_cast<float>(std::sin(i)));
    xs.push_back(static_cast<float>(std::cos(3 * i)));
    ys.push_back(static_cast<float>(i % 2));
    ys.push_back(static_cast<float>(1 - i % 2));
  }
  Tensor x = from_vector(xs, {40, 2}), y = from_vector(ys, {40, 2});
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{2}), std::make_shared<Dense>(4, "relu"), std::make_shared<Dense>(2, "softmax")});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::categorical_crossentropy(), {"accuracy", "auc"});
  TensorBatchSource train(x, y, 10, true, 3), val(x, y, 20);
  Run run;
  run.tb = std::make_shared<TensorBoard>(log_dir, options);
  FitOptions o;
  o.epochs = 3;
  o.verbose = Verbosity::Quiet;
  if (validation) o.validation = &val;
  o.callbacks = {std::make_shared<LearningRateScheduler>([](int epoch, double lr) { return epoch == 0 ? lr : lr / 2; }),
                 run.tb};
  run.history = trainer.fit(train, o);
  run.steps = trainer.optimizer().iterations();
  return run;
}

}  // namespace

TEST_CASE("TensorBoard: event files in Keras's layout, Keras 3 tags, History's values") {
  const fs::path log_dir = test::nn_temp_dir("tensorboard") / "logs";
  fs::remove_all(log_dir);
  Run run = fit_with_tensorboard(log_dir, {}, true);
  const History& h = run.history;

  const auto train_files = files_in(log_dir / "train"), val_files = files_in(log_dir / "validation");
  REQUIRE(train_files.size() == 1);
  REQUIRE(val_files.size() == 1);
  CHECK(train_files[0] == run.tb->train_file());
  CHECK(val_files[0] == run.tb->validation_file());
  const std::regex name(R"(events\.out\.tfevents\.\d{10,}\..+)");
  CHECK(std::regex_match(train_files[0].filename().string(), name));
  CHECK(std::regex_match(val_files[0].filename().string(), name));
  const std::string file_name = train_files[0].filename().string(), host = data::host_name();
  CHECK(file_name.substr(file_name.size() - host.size()) == host);

  // Every record framed and checksummed as petal's TFRecord reader wants.
  CHECK(data::count_tfrecords(train_files[0]) == 1 + 3 * 4);  // loss, accuracy, auc, learning_rate

  const Series train = read_series(train_files[0]);
  CHECK(train.size() == 4);
  CHECK(train.at("epoch_loss") == per_epoch(h["loss"]));
  CHECK(train.at("epoch_accuracy") == per_epoch(h["accuracy"]));
  CHECK(train.at("epoch_auc") == per_epoch(h["auc"]));
  CHECK(train.at("epoch_learning_rate") == per_epoch(h["lr"]));
  CHECK(train.at("epoch_learning_rate")[2].second == doctest::Approx(0.0025));
  CHECK(train.count("epoch_lr") == 0);

  const Series val = read_series(val_files[0]);
  CHECK(val.at("epoch_loss") == per_epoch(h["val_loss"]));
  CHECK(val.at("epoch_accuracy") == per_epoch(h["val_accuracy"]));
  CHECK(val.at("epoch_auc") == per_epoch(h["val_auc"]));
  const auto& vs_iterations = val.at("evaluation_loss_vs_iterations");
  REQUIRE(vs_iterations.size() == 3);
  CHECK(vs_iterations[2].first == run.steps);
  CHECK(vs_iterations[0].first == run.steps / 3);
  CHECK(vs_iterations[1].second == static_cast<float>(h["val_loss"][1]));
  CHECK(val.count("epoch_val_loss") == 0);
}

TEST_CASE("TensorBoard: update_freq N writes batch_ figures every N steps; no validation folder without validation") {
  const fs::path log_dir = test::nn_temp_dir("tensorboard") / "batches";
  fs::remove_all(log_dir);
  Run run = fit_with_tensorboard(log_dir, {.update_freq = 2}, false);
  CHECK(run.steps == 12);
  CHECK(!fs::exists(log_dir / "validation"));
  CHECK(run.tb->validation_file().empty());
  const Series train = read_series(run.tb->train_file());
  REQUIRE(train.count("batch_loss") == 1);
  std::vector<std::int64_t> steps;
  for (const auto& [step, value] : train.at("batch_loss")) steps.push_back(step);
  CHECK(steps == std::vector<std::int64_t>{2, 4, 6, 8, 10, 12});
  CHECK(train.at("batch_accuracy").size() == 6);
  // The last batch of an epoch logs the epoch's running figures: the epoch's.
  CHECK(train.at("batch_loss")[1].second == static_cast<float>(run.history["loss"][0]));
  CHECK(train.at("epoch_loss") == per_epoch(run.history["loss"]));
  CHECK(train.count("batch_learning_rate") == 0);

  // A second fit into the same folder starts a new file; the first stays whole.
  const fs::path first = run.tb->train_file();
  const auto first_size = fs::file_size(first);
  Run again = fit_with_tensorboard(log_dir, {.update_freq = 2}, false);
  CHECK(again.tb->train_file() != first);
  CHECK(fs::file_size(first) == first_size);
  CHECK(files_in(log_dir / "train").size() == 2);
}

TEST_CASE("TensorBoard: events are flushed as they are written; bad folders and options") {
  const fs::path dir = test::nn_temp_dir("tensorboard") / "writer";
  fs::remove_all(dir);
  data::EventFileWriter writer(dir);
  writer.add_scalar("epoch_loss", 0.5, 0);
  // Readable before close: a running TensorBoard sees each point at once.
  std::vector<data::Event> events = data::read_event_file(writer.path());
  REQUIRE(events.size() == 2);
  CHECK(events[1].scalars[0].tag == "epoch_loss");
  CHECK(events[1].scalars[0].value == 0.5f);
  CHECK(events[1].step == 0);
  writer.add_scalar("epoch_loss", 0.25, 7);
  events = data::read_event_file(writer.path());
  REQUIRE(events.size() == 3);
  CHECK(events[2].step == 7);
  // Round trip of the encoder with negative steps and several values.
  data::Event e{.wall_time = 1.5, .step = -3, .file_version = "", .scalars = {{"a", 1.0f}, {"b", -2.0f}}};
  data::Event back = data::decode_event(data::encode_event(e), "test");
  CHECK(back.wall_time == 1.5);
  CHECK(back.step == -3);
  REQUIRE(back.scalars.size() == 2);
  CHECK(back.scalars[1].tag == "b");
  CHECK(back.scalars[1].value == -2.0f);
  CHECK_THROWS_AS(data::decode_event(std::string("\x09\x01\x02", 3), "test"), FormatError);

  CHECK(data::event_file_name(12, "host") == "events.out.tfevents.0000000012.host");
  std::ofstream(dir / "a_file") << "x";
  CHECK_THROWS_AS(data::EventFileWriter(dir / "a_file" / "sub"), IOError);
  CHECK_THROWS_AS(TensorBoard(dir, {.update_freq = -1}), ValueError);
  CHECK_THROWS_AS(TensorBoard(""), ValueError);
}
