#include "examples/flowers_common.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <iostream>
#include <numeric>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "examples/build_info.hpp"
#include "examples/image_canvas.hpp"
#include "kernels/cpu/isa.hpp"
#include "data/example.hpp"
#include "data/image_io.hpp"
#include "data/image_ops.hpp"
#include "data/png.hpp"
#include "data/tfrecord.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "nn/device.hpp"
#include "nn/json.hpp"

namespace petal::examples {

// ---- command line ----

std::string CommandLine::get(const std::string& flag, const std::string& fallback) const {
  auto it = values.find(flag);
  return it == values.end() ? fallback : it->second;
}

namespace {

std::string range_text(std::int64_t min, std::int64_t max) {
  if (max == std::numeric_limits<std::int64_t>::max()) return str_cat("an integer >= ", min);
  return str_cat("an integer from ", min, " to ", max);
}

}  // namespace

std::int64_t CommandLine::get_int(const std::string& flag, std::int64_t fallback, std::int64_t min,
                                  std::int64_t max) const {
  auto it = values.find(flag);
  if (it == values.end()) return fallback;
  const std::string& text = it->second;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max)
    fail(str_cat(flag, " expects ", range_text(min, max), ", got \"", text, "\""));
  return value;
}

namespace {

// from_chars, not stod: no locale, no leading blanks, and overflow is an error.
std::optional<double> parse_finite_double(const std::string& text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace

double CommandLine::get_double(const std::string& flag, double fallback, double min, double max) const {
  auto it = values.find(flag);
  if (it == values.end()) return fallback;
  const std::optional<double> value = parse_finite_double(it->second);
  if (!value || *value < min || *value > max)
    fail(str_cat(flag, " expects a number from ", min, " to ", max, ", got \"", it->second, "\""));
  return *value;
}

double CommandLine::get_positive_double(const std::string& flag, double fallback, double max) const {
  auto it = values.find(flag);
  if (it == values.end()) return fallback;
  const std::optional<double> value = parse_finite_double(it->second);
  if (!value || !(*value > 0) || *value > max)
    fail(str_cat(flag, " expects a number above 0 and at most ", max, ", got \"", it->second, "\""));
  return *value;
}

void CommandLine::fail(const std::string& message) const { throw UsageError(message); }

CommandLine parse_command_line(int argc, char** argv, const std::string& program, const std::string& usage,
                               const std::set<std::string>& value_flags, const std::set<std::string>& switch_flags,
                               Positional positional) {
  CommandLine cl;
  cl.program = program;
  cl.usage = usage;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      std::exit(kExitSuccess);
    }
    // "--epochs=3" is "--epochs 3" (a value may itself hold '=').
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      const std::string name = arg.substr(0, eq);
      if (switch_flags.count(name)) cl.fail("option " + name + " takes no value");
      if (!value_flags.count(name)) cl.fail("unknown option " + name);
      if (eq + 1 == arg.size()) cl.fail("option " + name + " needs a value");
      cl.values[name] = arg.substr(eq + 1);
    } else if (value_flags.count(arg)) {
      // "--out --epochs 3" forgot the folder: --epochs is not the value.
      if (i + 1 >= argc || value_flags.count(argv[i + 1]) || switch_flags.count(argv[i + 1]))
        cl.fail("option " + arg + " needs a value");
      cl.values[arg] = argv[++i];
    } else if (switch_flags.count(arg)) {
      cl.switches.insert(arg);
    } else if (arg.size() > 1 && arg[0] == '-') {
      cl.fail("unknown option " + arg);
    } else if (positional == Positional::None) {
      cl.fail("unexpected argument \"" + arg + "\"");
    } else {
      cl.positional.push_back(arg);
    }
  }
  return cl;
}

// ---- output folder ----

OutputFolder::OutputFolder(const std::filesystem::path& path, const std::string& option) {
  namespace fs = std::filesystem;
  if (path.empty()) throw UsageError(option + " must not be empty");
  path_ = path.lexically_normal();
  if (!path_.has_filename() && path_.has_parent_path() && path_ != path_.root_path()) path_ = path_.parent_path();
  const std::string name = str_cat(option, " '", path.string(), "'");

  std::vector<fs::path> missing;  // innermost first
  for (fs::path p = path_; !p.empty(); p = p.parent_path()) {
    std::error_code ec;
    const fs::file_status status = fs::status(p, ec);
    if (status.type() == fs::file_type::not_found) {
      missing.push_back(p);
      if (p == p.parent_path()) break;
      continue;
    }
    if (ec) throw IOError(str_cat(name, ": cannot examine '", p.string(), "': ", ec.message()));
    if (!fs::is_directory(status))
      throw IOError(p == path_ ? str_cat(name, " exists and is not a folder")
                               : str_cat(name, ": '", p.string(), "' is not a folder"));
    break;
  }
  try {
    for (auto p = missing.rbegin(); p != missing.rend(); ++p) {
      std::error_code ec;
      if (fs::create_directory(*p, ec)) created_folders_.push_back(*p);
      else if (ec) throw IOError(str_cat(name, ": cannot create the folder '", p->string(), "': ", ec.message()));
    }
    // Permissions, read-only mounts and quotas only show when writing.
    const fs::path probe = path_ / str_cat(".write-probe-", ::getpid());
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw IOError(str_cat(name, ": cannot write in the folder: ", std::strerror(errno)));
    ::close(fd);
    if (::unlink(probe.c_str()) != 0)
      throw IOError(str_cat(name, ": cannot remove the probe file '", probe.string(), "': ", std::strerror(errno)));
  } catch (...) {
    remove_what_this_run_created();
    throw;
  }
}

OutputFolder::~OutputFolder() {
  if (!keep_) remove_what_this_run_created();
}

std::filesystem::path OutputFolder::file(const std::string& name) {
  files_.push_back(path_ / name);
  return files_.back();
}

void OutputFolder::remove_what_this_run_created() noexcept {
  // In a folder that existed before, files of an earlier run may have the
  // same names: they are left alone (writes replace them atomically).
  if (created_folders_.empty()) return;
  std::error_code ec;
  for (const auto& f : files_) std::filesystem::remove(f, ec);
  // remove() of a folder fails unless it is empty: nothing else is deleted.
  for (auto p = created_folders_.rbegin(); p != created_folders_.rend(); ++p) std::filesystem::remove(*p, ec);
  created_folders_.clear();
}

// ---- images ----

LabeledImages read_labeled_shards(const std::vector<std::filesystem::path>& files, int size,
                                  std::int64_t num_classes) {
  std::vector<std::string> jpegs;
  std::vector<std::string> sources;
  LabeledImages out;
  for (const auto& file : files) {
    require_regular_file(file, "shard");
    data::TFRecordReader reader(file);
    std::string payload;
    for (;;) {
      // "FILE: record R at byte B", as the TFRecord reader and the Dataset name records.
      const std::string source =
          str_cat(file.string(), ": record ", reader.next_record_index(), " at byte ", reader.next_record_offset());
      if (!reader.read(payload)) break;
      try {
        const data::Example example = data::decode_example(payload);
        jpegs.push_back(example.bytes("image"));
        out.classes.push_back(example.int64("class"));
      } catch (const DTypeError& e) {
        throw DTypeError(str_cat(source, ": ", e.what()));
      } catch (const FormatError& e) {
        throw FormatError(str_cat(source, ": ", e.what()));
      }
      PETAL_CHECK(num_classes <= 0 || (out.classes.back() >= 0 && out.classes.back() < num_classes), FormatError,
                  source, ": class ", out.classes.back(), " outside 0..", num_classes - 1);
      sources.push_back(source);
    }
  }
  const std::int64_t n = static_cast<std::int64_t>(jpegs.size());
  PETAL_CHECK(n > 0, IOError, "no records in ", files.size() == 1 ? files.front().string() : str_cat(files.size(), " shards"));
  out.pixels = Tensor::empty({n, size, size, 3}, DType::UInt8);
  std::uint8_t* dst = out.pixels.data<std::uint8_t>();
  const std::size_t image_bytes = static_cast<std::size_t>(size) * size * 3;
  parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    data::Image image, resized;
    for (std::int64_t i = begin; i < end; ++i) {
      data::decode_image_into(jpegs[i], image, sources[i]);
      const data::Image* use = &image;
      if (image.height != size || image.width != size) {
        data::resize_bilinear_into(image, size, size, resized);
        use = &resized;
      }
      std::memcpy(dst + i * image_bytes, use->data(), image_bytes);
    }
  });
  return out;
}

Tensor one_hot(const std::vector<std::int64_t>& classes, std::int64_t num_classes) {
  std::vector<float> values(classes.size() * static_cast<std::size_t>(num_classes), 0.0f);
  for (std::size_t i = 0; i < classes.size(); ++i) {
    PETAL_CHECK(classes[i] >= 0 && classes[i] < num_classes, IndexError, "one_hot: class ", classes[i], " of row ",
                i, " outside 0..", num_classes - 1);
    values[i * num_classes + classes[i]] = 1.0f;
  }
  return from_vector(values, {static_cast<std::int64_t>(classes.size()), num_classes});
}

data::PixelScale parse_preprocessing(const std::string& name) {
  if (name == "mobilenet") return data::PixelScale::MinusOneOne;
  if (name == "lab") return data::PixelScale::ZeroOne;
  throw ValueError(str_cat("unknown preprocessing \"", name, "\" (expected mobilenet or lab)"));
}

const char* preprocessing_formula(data::PixelScale scale) {
  return scale == data::PixelScale::MinusOneOne ? "x/127.5-1" : "x/255";
}

Tensor images_to_batch(const std::vector<data::Image>& images, int size, data::PixelScale scale,
                       bool short_side_crop) {
  const std::int64_t n = static_cast<std::int64_t>(images.size());
  Tensor batch = Tensor::empty({n, size, size, 3});
  const std::size_t per_image = static_cast<std::size_t>(size) * size * 3;
  for (std::int64_t i = 0; i < n; ++i) {
    const data::Image resized = short_side_crop ? data::resize_short_side_center_crop(images[i], size, size)
                                                : data::resize_bilinear(images[i], size, size);
    data::pixels_to_float(resized.data(), batch.data<float>() + i * per_image, per_image, scale);
  }
  return batch;
}

namespace {
Tensor row_indices(std::int64_t n) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  return from_vector(idx);
}
}  // namespace

ImageRowsSource::ImageRowsSource(const LabeledImages& images, Tensor targets, std::int64_t batch_size, bool shuffle,
                                 std::uint64_t seed, bool drop_remainder, data::PixelScale scale, bool random_flip)
    : ImageRowsSource(images, std::move(targets), batch_size, shuffle, seed, drop_remainder, scale,
                      RowAugmentation{.random_flip = random_flip}) {}

ImageRowsSource::ImageRowsSource(const LabeledImages& images, Tensor targets, std::int64_t batch_size, bool shuffle,
                                 std::uint64_t seed, bool drop_remainder, data::PixelScale scale,
                                 RowAugmentation augmentation)
    : images_(images),
      rows_(row_indices(images.size()), std::move(targets), batch_size, shuffle, seed, drop_remainder),
      scale_(scale),
      augmentation_(augmentation),
      seed_(seed) {
  const std::int64_t h = images.pixels.size(1), w = images.pixels.size(2);
  PETAL_CHECK(augmentation.crop >= 0 && augmentation.crop <= std::min(h, w), ValueError, "ImageRowsSource: crop ",
              augmentation.crop, " does not fit in ", h, "x", w, " images");
  PETAL_CHECK(std::isfinite(augmentation.max_brightness_delta) && augmentation.max_brightness_delta >= 0, ValueError,
              "ImageRowsSource: max_brightness_delta ", augmentation.max_brightness_delta,
              " must be finite and >= 0");
}

void ImageRowsSource::begin_epoch(int epoch) {
  rows_.begin_epoch(epoch);
  random_.seed(seed_ ^ (0xF11Full * static_cast<std::uint64_t>(epoch + 1)));
}

std::optional<nn::Batch> ImageRowsSource::next() {
  std::optional<nn::Batch> rows = rows_.next();
  if (!rows) return std::nullopt;
  const std::vector<std::int64_t> idx = rows->x.contiguous().to_vector<std::int64_t>();
  const std::int64_t n = static_cast<std::int64_t>(idx.size());
  const int h = static_cast<int>(images_.pixels.size(1)), w = static_cast<int>(images_.pixels.size(2));
  const RowAugmentation& a = augmentation_;
  const int out_h = a.crop > 0 ? a.crop : h, out_w = a.crop > 0 ? a.crop : w;
  // Every random choice is drawn here, in row order, before the threads run.
  struct Choice {
    bool flip = false;
    int top = 0, left = 0;
    float brightness = 0;
  };
  std::vector<Choice> choices(idx.size());
  for (auto& c : choices) {
    if (a.random_flip) c.flip = random_.uniform_int(2) == 1;
    if (a.crop > 0 && a.random_crop) {
      c.top = static_cast<int>(random_.uniform_int(static_cast<std::uint64_t>(h - out_h + 1)));
      c.left = static_cast<int>(random_.uniform_int(static_cast<std::uint64_t>(w - out_w + 1)));
    } else {
      c.top = (h - out_h) / 2;
      c.left = (w - out_w) / 2;
    }
    if (a.max_brightness_delta > 0) c.brightness = (random_.uniform_float() * 2.0f - 1.0f) * a.max_brightness_delta;
  }
  const std::size_t in_bytes = static_cast<std::size_t>(h) * w * 3;
  const std::size_t out_values = static_cast<std::size_t>(out_h) * out_w * 3;
  Tensor x = Tensor::empty_pinned({n, out_h, out_w, 3});  // copied to the model's device as it is
  const std::uint8_t* src = images_.pixels.data<std::uint8_t>();
  float* dst = x.data<float>();
  parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    data::Image image;
    for (std::int64_t i = begin; i < end; ++i) {
      const Choice& c = choices[static_cast<std::size_t>(i)];
      image.reset(h, w, 3);
      std::memcpy(image.data(), src + static_cast<std::size_t>(idx[i]) * in_bytes, in_bytes);
      if (out_h != h || out_w != w) image = data::crop(image, c.top, c.left, out_h, out_w);
      if (c.flip) data::flip_horizontal(image);
      if (c.brightness != 0) data::adjust_brightness(image, c.brightness);
      data::pixels_to_float(image.data(), dst + static_cast<std::size_t>(i) * out_values, out_values, scale_);
    }
  });
  return nn::Batch{x, rows->y};
}

void write_prediction_grid(const std::filesystem::path& path, const LabeledImages& images,
                           const std::vector<std::int64_t>& predicted, const std::vector<std::string>& classes) {
  const int n = static_cast<int>(std::min<std::int64_t>(9, images.size()));
  const int size = static_cast<int>(images.pixels.size(1));
  const int cell_w = std::max(size, 216) + 16, title_h = 28, cell_h = size + title_h + 8;
  Canvas canvas(3 * cell_w, ((n + 2) / 3) * cell_h);
  const std::size_t image_bytes = static_cast<std::size_t>(size) * size * 3;
  for (int i = 0; i < n; ++i) {
    const int x = (i % 3) * cell_w, y = (i / 3) * cell_h;
    data::Image photo(size, size, 3);
    std::memcpy(photo.data(), images.pixels.data<std::uint8_t>() + i * image_bytes, image_bytes);
    canvas.draw_image(photo, x + (cell_w - size) / 2, y + title_h, size, size);
    const bool right = predicted[i] == images.classes[i];
    std::string title = classes[predicted[i]];
    if (!right) title += " [" + classes[images.classes[i]] + "]";
    const int scale = Canvas::text_width(title, 2) <= cell_w - 8 ? 2 : 1;
    const Rgb color = right ? Rgb{0, 0, 0} : Rgb{220, 0, 0};
    canvas.draw_text(title, x + (cell_w - Canvas::text_width(title, scale)) / 2, y + 6, scale, color);
  }
  data::write_png(path, canvas.image());
}

// ---- device ----

Device select_device(const std::string& name) {
  Device device;
  try {
    device = Device::parse(name);
  } catch (const ValueError& e) {
    throw UsageError(str_cat("--device: ", e.what()));
  }
  device = nn::usable_device(name, "--device");
  // On stderr: --json output on stdout stays valid.
  if (device.is_cuda()) std::fprintf(stderr, "device: %s (%s)\n", device.str().c_str(), cuda::device_name(device.index).c_str());
  return device;
}

// ---- results ----

std::string matrix_json(const std::vector<std::vector<std::int64_t>>& m) {
  std::string out = "[";
  for (std::size_t r = 0; r < m.size(); ++r) {
    out += r ? ", [" : "[";
    for (std::size_t c = 0; c < m[r].size(); ++c) out += (c ? ", " : "") + std::to_string(m[r][c]);
    out += "]";
  }
  return out + "]";
}

std::string string_list_json(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + nn::json::quote(values[i]);
  return out + "]";
}

std::string join(const std::vector<std::string>& values, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? separator : "") + values[i];
  return out;
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string model = line.substr(colon + 1);
    const auto first = model.find_first_not_of(" \t");
    return first == std::string::npos ? "unknown" : model.substr(first);
  }
  return "unknown";
}

std::string machine_json() {
  return "{\"cpu\": " + nn::json::quote(cpu_model()) + ", \"threads\": " + std::to_string(num_threads()) +
         ", \"isa\": " + nn::json::quote(cpu::isa_name(cpu::active_isa())) + "}";
}

std::vector<std::pair<std::string, std::string>> configuration_fields(const RunConfiguration& config) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"epochs", std::to_string(config.epochs)},
      {"batch", std::to_string(config.batch)},
      {"learning_rate", nn::json::number(config.learning_rate)},
      {"optimizer", nn::json::quote(config.optimizer)}};
  if (!config.head.empty()) fields.emplace_back("head", nn::json::quote(config.head));
  fields.emplace_back("seed", std::to_string(config.seed));
  fields.emplace_back("device", nn::json::quote(config.device));
  fields.emplace_back("petal_version", nn::json::quote(petal_version()));
  fields.emplace_back("git_commit", nn::json::quote(petal_git_commit()));
  fields.emplace_back("machine", machine_json());
  return fields;
}

std::string flowers_results_json(double val_accuracy, const nn::History& history, double images_per_second,
                                 const std::vector<std::string>& classes,
                                 const std::vector<std::vector<std::int64_t>>& confusion,
                                 const RunConfiguration& config,
                                 const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string out = "{\n  \"val_accuracy\": " + nn::json::number(val_accuracy) + ",\n  \"history\": " +
                    history.to_json({"loss", "accuracy", "val_loss", "val_accuracy"}) + ",\n  \"images_per_second\": " +
                    nn::json::number(images_per_second) + ",\n  \"classes\": " +
                    string_list_json(classes) + ",\n  \"confusion_matrix\": " + matrix_json(confusion);
  for (const auto& [key, value] : configuration_fields(config)) out += ",\n  " + nn::json::quote(key) + ": " + value;
  for (const auto& [key, value] : extra) out += ",\n  " + nn::json::quote(key) + ": " + value;
  return out + "\n}\n";
}

}  // namespace petal::examples
