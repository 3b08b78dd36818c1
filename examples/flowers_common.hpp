// Helpers shared by the example programs: command-line flags, in-memory
// labelled image sets read from TFRecord shards, a batch source over them,
// MobileNetV2 preprocessing and results.json writing. Generic on purpose, so
// every flowers example (dense, transfer, evaluate, predict) can use it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "examples/program_main.hpp"
#include "data/image.hpp"
#include "nn/batch_source.hpp"
#include "nn/history.hpp"

namespace petal::examples {

// ---- command line ----

struct CommandLine {
  std::string program, usage;
  std::map<std::string, std::string> values;  // "--epochs" -> "10"
  std::set<std::string> switches;             // "--augment"
  std::vector<std::string> positional;

  bool has(const std::string& flag) const { return values.count(flag) || switches.count(flag); }
  std::string get(const std::string& flag, const std::string& fallback = "") const;
  // The value of `flag` (or the fallback when absent) within [min, max]:
  // anything else (not a number, trailing characters, overflow, out of the
  // range, not finite) is a UsageError naming the flag and the range.
  std::int64_t get_int(const std::string& flag, std::int64_t fallback, std::int64_t min, std::int64_t max) const;
  double get_double(const std::string& flag, double fallback, double min, double max) const;
  // Like get_double for values that must be > 0 (learning rates).
  double get_positive_double(const std::string& flag, double fallback, double max) const;
  // Throws UsageError(message): exit 2 under run_program.
  [[noreturn]] void fail(const std::string& message) const;
};

enum class Positional { None, Allowed };

// Bounds of the options the training examples share: far above any sensible
// value, low enough that no cast truncates them.
inline constexpr std::int64_t kMaxEpochs = 1'000'000;
inline constexpr std::int64_t kMaxBatch = 1 << 20;
inline constexpr double kMaxLearningRate = 1e3;
inline constexpr std::int64_t kMaxSeed = std::numeric_limits<std::int64_t>::max();

// --help / -h prints the usage on stdout and exits 0; an unknown flag, a
// missing value (a known flag counts as missing) or an unexpected positional
// argument throws UsageError. Flags in value_flags take the next argument.
CommandLine parse_command_line(int argc, char** argv, const std::string& program, const std::string& usage,
                               const std::set<std::string>& value_flags, const std::set<std::string>& switch_flags,
                               Positional positional);

// ---- output folder ----

// The --out folder, checked before any work: created when missing (with its
// missing parents), and a probe file created and removed in it, so a path
// under a file, an existing file or an unwritable place fails at once (IOError
// naming the option). When this run created the folder and fails before
// keep(), the destructor removes the files named through file() and the
// folders it created (only when empty): a failed run leaves no empty or
// half-written folder behind, and never touches what existed before it.
class OutputFolder {
 public:
  OutputFolder(const std::filesystem::path& path, const std::string& option);
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path()/name, remembered as written by this run.
  std::filesystem::path file(const std::string& name);
  // The run succeeded: keep everything.
  void keep() { keep_ = true; }

 private:
  void remove_what_this_run_created() noexcept;

  std::filesystem::path path_;
  std::vector<std::filesystem::path> created_folders_;  // outermost first
  std::vector<std::filesystem::path> files_;
  bool keep_ = false;
};

// ---- device ----

// The --device value ("cpu", "cuda", "cuda:N") checked by nn::usable_device:
// a UsageError for a name that is no device, a DeviceError when CUDA is not
// built or no such GPU exists; prints "device: cuda:0 (<GPU name>)" on stderr
// for a GPU, nothing for the CPU.
Device select_device(const std::string& name);

// ---- images ----

// uint8 pixels [N, H, W, 3] and their class indices.
struct LabeledImages {
  Tensor pixels;
  std::vector<std::int64_t> classes;
  std::int64_t size() const { return static_cast<std::int64_t>(classes.size()); }
};

// Reads every record of the shards (features "image" JPEG bytes and "class"),
// decodes them on all threads and resizes any that are not size x size.
// Errors name the shard and the record; with num_classes > 0 a class outside
// 0..num_classes-1 is one. Each shard must be a regular file (a FIFO fails
// instead of blocking).
LabeledImages read_labeled_shards(const std::vector<std::filesystem::path>& files, int size,
                                  std::int64_t num_classes = 0);

// [N, num_classes] float one-hot rows.
Tensor one_hot(const std::vector<std::int64_t>& classes, std::int64_t num_classes);

// "mobilenet" -> [-1, 1] (x / 127.5 - 1); "lab" -> [0, 1] (x / 255).
data::PixelScale parse_preprocessing(const std::string& name);
const char* preprocessing_formula(data::PixelScale scale);

// Float batch [N, H, W, 3] of whole images of any size: each is resized to
// size x size (bilinear), or with short_side_crop its short side is scaled to
// `size` and the centre cropped (how the flowers shards were made).
Tensor images_to_batch(const std::vector<data::Image>& images, int size, data::PixelScale scale,
                       bool short_side_crop);

// What ImageRowsSource does to each image of a batch (data/image_ops.hpp),
// in this order: crop, flip, brightness. Random choices are drawn per image
// from a generator seeded per epoch, so a seed and an epoch give the same
// batches whatever the thread count.
struct RowAugmentation {
  bool random_flip = false;  // mirror left-right with probability 1/2
  int crop = 0;              // > 0: a crop x crop window of each image (batches are [N, crop, crop, 3])
  bool random_crop = false;  // the window at a uniformly random place, else centred
  float max_brightness_delta = 0;  // > 0: add a delta uniform in [-max, max] (pixel units of [0, 1], saturating)
};

// Batches of rows of a LabeledImages as float tensors, in exactly the order a
// TensorBatchSource with the same (rows, batch, shuffle, seed, drop) gives, so
// training from images and training from cached per-row features see the
// same batches. Optional augmentation (RowAugmentation; random_flip alone
// draws as the flip-only form always has).
class ImageRowsSource : public nn::BatchSource {
 public:
  ImageRowsSource(const LabeledImages& images, Tensor targets, std::int64_t batch_size, bool shuffle,
                  std::uint64_t seed, bool drop_remainder, data::PixelScale scale, bool random_flip);
  ImageRowsSource(const LabeledImages& images, Tensor targets, std::int64_t batch_size, bool shuffle,
                  std::uint64_t seed, bool drop_remainder, data::PixelScale scale, RowAugmentation augmentation);
  void begin_epoch(int epoch) override;
  std::optional<nn::Batch> next() override;
  std::int64_t steps_per_epoch() const override { return rows_.steps_per_epoch(); }

 private:
  const LabeledImages& images_;
  nn::TensorBatchSource rows_;  // yields row indices and targets
  data::PixelScale scale_;
  RowAugmentation augmentation_;
  std::uint64_t seed_;
  Generator random_;
};

// The lab's display_9_images_with_predictions as a PNG: the first 9 images
// of `images`, titled with the predicted class, black when right, red with
// the true class in brackets when wrong.
void write_prediction_grid(const std::filesystem::path& path, const LabeledImages& images,
                           const std::vector<std::int64_t>& predicted, const std::vector<std::string>& classes);

// ---- results ----

// [[1, 2], [3, 4]]
std::string matrix_json(const std::vector<std::vector<std::int64_t>>& matrix);
std::string string_list_json(const std::vector<std::string>& values);
std::string join(const std::vector<std::string>& values, const std::string& separator);

// A training run's configuration, as every training example records it.
struct RunConfiguration {
  int epochs = 0;
  std::int64_t batch = 0;
  double learning_rate = 0;
  std::string optimizer;  // "adam", ...
  std::string head;       // the classifier head where the program has a choice; empty: not recorded
  std::uint64_t seed = 0;
  std::string device;     // "cpu", "cuda:0"
};

// "model name" of /proc/cpuinfo ("unknown" when absent).
std::string cpu_model();
// {"cpu": "<model name>", "threads": petal's thread count, "isa": the CPU
// kernels' active instruction set ("avx512", "avx2", "scalar")}
std::string machine_json();
// The configuration as results.json fields: epochs, batch, learning_rate,
// optimizer, head (when set), seed, device, petal_version, git_commit
// ("unknown" outside a git checkout), machine.
std::vector<std::pair<std::string, std::string>> configuration_fields(const RunConfiguration& config);

// The flowers results.json schema: val_accuracy, history, images_per_second,
// classes, confusion_matrix, the configuration (configuration_fields), then
// `extra` fields (already JSON values) in order.
std::string flowers_results_json(double val_accuracy, const nn::History& history, double images_per_second,
                                 const std::vector<std::string>& classes,
                                 const std::vector<std::vector<std::int64_t>>& confusion,
                                 const RunConfiguration& config,
                                 const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace petal::examples
