// Helpers shared by the example programs: command-line flags, in-memory
// labelled image sets read from TFRecord shards, a batch source over them,
// MobileNetV2 preprocessing and results.json writing. Generic on purpose, so
// every flowers example (dense, transfer, evaluate, predict) can use it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"
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
  std::int64_t get_int(const std::string& flag, std::int64_t fallback) const;
  double get_double(const std::string& flag, double fallback) const;
  // Prints "<program>: <message>" and the usage to stderr, exits with 2.
  [[noreturn]] void fail(const std::string& message) const;
};

// --help / -h prints the usage and exits 0; an unknown flag or a missing
// value exits 2 with the usage. Flags in value_flags take the next argument.
CommandLine parse_command_line(int argc, char** argv, const std::string& program, const std::string& usage,
                               const std::set<std::string>& value_flags, const std::set<std::string>& switch_flags);

// ---- device ----

// The --device value ("cpu", "cuda", "cuda:N") checked by nn::usable_device
// (a DeviceError naming `program` when CUDA is not built or no GPU exists);
// prints "device: cuda:0 (<GPU name>)" on stderr for a GPU, nothing for the CPU.
Device select_device(const std::string& name, const std::string& program);

// ---- images ----

// uint8 pixels [N, H, W, 3] and their class indices.
struct LabeledImages {
  Tensor pixels;
  std::vector<std::int64_t> classes;
  std::int64_t size() const { return static_cast<std::int64_t>(classes.size()); }
};

// Reads every record of the shards (features "image" JPEG bytes and "class"),
// decodes them on all threads and resizes any that are not size x size.
LabeledImages read_labeled_shards(const std::vector<std::filesystem::path>& files, int size);

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

// Batches of rows of a LabeledImages as float tensors, in exactly the order a
// TensorBatchSource with the same (rows, batch, shuffle, seed, drop) gives, so
// training from images and training from cached per-row features see the
// same batches. Optional random horizontal flips (a per-epoch generator).
class ImageRowsSource : public nn::BatchSource {
 public:
  ImageRowsSource(const LabeledImages& images, Tensor targets, std::int64_t batch_size, bool shuffle,
                  std::uint64_t seed, bool drop_remainder, data::PixelScale scale, bool random_flip);
  void begin_epoch(int epoch) override;
  std::optional<nn::Batch> next() override;
  std::int64_t steps_per_epoch() const override { return rows_.steps_per_epoch(); }

 private:
  const LabeledImages& images_;
  nn::TensorBatchSource rows_;  // yields row indices and targets
  data::PixelScale scale_;
  bool random_flip_;
  std::uint64_t seed_;
  Generator flips_;
};

// ---- results ----

// [[1, 2], [3, 4]]
std::string matrix_json(const std::vector<std::vector<std::int64_t>>& matrix);
std::string string_list_json(const std::vector<std::string>& values);
std::string join(const std::vector<std::string>& values, const std::string& separator);

// The flowers results.json schema: val_accuracy, history, images_per_second,
// classes, confusion_matrix, then `extra` fields (already JSON values) in order.
std::string flowers_results_json(double val_accuracy, const nn::History& history, double images_per_second,
                                 const std::vector<std::string>& classes,
                                 const std::vector<std::vector<std::int64_t>>& confusion,
                                 const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace petal::examples
