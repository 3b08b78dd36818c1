#include "data/dataset.hpp"

#include <algorithm>
#include <cctype>

#include "data/dataset_pipeline.hpp"
#include "data/file_list.hpp"
#include "data/tfrecord.hpp"

namespace petal::data {
namespace {

using detail::DatasetConfig;
using detail::Pipeline;

std::vector<std::filesystem::path> sorted_entries(const std::filesystem::path& dir, bool directories) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (directories ? it->is_directory(ec) : it->is_regular_file(ec)) out.push_back(it->path());
  }
  if (ec) throw IOError(str_cat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace

struct Dataset::Impl {
  DatasetConfig config;
  std::unique_ptr<Pipeline> run;
  std::int64_t passes = 0;
  std::optional<std::int64_t> record_count;

  DatasetConfig& edit() {
    run.reset();
    return config;
  }
};

Dataset::Dataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataset::Dataset(Dataset&&) noexcept = default;
Dataset& Dataset::operator=(Dataset&&) noexcept = default;
Dataset::~Dataset() = default;

Dataset Dataset::from_tfrecords(std::vector<std::filesystem::path> files) {
  PETAL_CHECK(!files.empty(), ValueError, "Dataset::from_tfrecords: no files given");
  for (const auto& f : files) {
    std::error_code ec;
    PETAL_CHECK(std::filesystem::is_regular_file(f, ec), IOError, "Dataset::from_tfrecords: '", f.string(),
                "' is not a readable file");
  }
  auto impl = std::make_unique<Impl>();
  impl->config.kind = RecordKind::Example;
  impl->config.files = std::move(files);
  return Dataset(std::move(impl));
}

Dataset Dataset::from_tfrecord_glob(const std::string& pattern) { return from_tfrecords(glob_files(pattern)); }

Dataset Dataset::from_image_folder(const std::filesystem::path& root) {
  std::error_code ec;
  PETAL_CHECK(std::filesystem::is_directory(root, ec), IOError, "Dataset::from_image_folder: '", root.string(),
              "' is not a folder");
  auto impl = std::make_unique<Impl>();
  DatasetConfig& cfg = impl->config;
  cfg.kind = RecordKind::EncodedImage;
  for (const auto& class_dir : sorted_entries(root, true)) {
    const auto label = static_cast<std::int64_t>(cfg.class_names.size());
    cfg.class_names.push_back(class_dir.filename().string());
    for (const auto& file : sorted_entries(class_dir, false)) {
      if (!has_image_extension(file)) continue;
      cfg.files.push_back(file);
      cfg.file_labels.push_back(label);
    }
  }
  PETAL_CHECK(!cfg.class_names.empty(), ValueError, "Dataset::from_image_folder: '", root.string(),
              "' has no class subfolders");
  PETAL_CHECK(!cfg.files.empty(), ValueError, "Dataset::from_image_folder: no .jpg/.jpeg/.png files in the ",
              cfg.class_names.size(), " subfolders of '", root.string(), "'");
  return Dataset(std::move(impl));
}

Dataset& Dataset::map(const Preprocess& preprocess) {
  impl_->edit().map_fn = make_map(preprocess);
  return *this;
}

Dataset& Dataset::map(MapFn fn) {
  PETAL_CHECK(static_cast<bool>(fn), ValueError, "Dataset::map: empty function");
  impl_->edit().map_fn = std::move(fn);
  return *this;
}

Dataset& Dataset::shuffle(std::size_t buffer_size, std::uint64_t seed, bool shuffle_files) {
  DatasetConfig& cfg = impl_->edit();
  cfg.shuffle_buffer = buffer_size;
  cfg.seed = seed;
  cfg.shuffle_files = shuffle_files;
  return *this;
}

Dataset& Dataset::seed(std::uint64_t seed) {
  impl_->edit().seed = seed;
  return *this;
}

Dataset& Dataset::batch(std::int64_t batch_size, bool drop_remainder) {
  PETAL_CHECK(batch_size >= 1, ValueError, "Dataset::batch: batch size ", batch_size, " must be >= 1");
  DatasetConfig& cfg = impl_->edit();
  cfg.batch_size = batch_size;
  cfg.drop_remainder = drop_remainder;
  return *this;
}

Dataset& Dataset::repeat(std::int64_t count) {
  PETAL_CHECK(count == -1 || count >= 1, ValueError, "Dataset::repeat: count ", count, " must be >= 1 or -1");
  impl_->edit().repeat = count;
  return *this;
}

Dataset& Dataset::prefetch(int batches) {
  PETAL_CHECK(batches >= 0, ValueError, "Dataset::prefetch: ", batches, " batches must be >= 0");
  impl_->edit().prefetch = batches;
  return *this;
}

Dataset& Dataset::num_parallel_calls(int threads) {
  impl_->edit().workers = threads;
  return *this;
}

Dataset& Dataset::num_parallel_reads(int files) {
  PETAL_CHECK(files >= 1, ValueError, "Dataset::num_parallel_reads: ", files, " must be >= 1");
  impl_->edit().parallel_reads = files;
  return *this;
}

Dataset& Dataset::deterministic(bool keep_order) {
  impl_->edit().deterministic = keep_order;
  return *this;
}

Dataset& Dataset::output_uint8() {
  impl_->edit().dtype = DType::UInt8;
  return *this;
}

Dataset& Dataset::output_float(PixelScale scale) {
  DatasetConfig& cfg = impl_->edit();
  cfg.dtype = DType::Float32;
  cfg.scale = scale;
  return *this;
}

Dataset& Dataset::one_hot(int num_classes) {
  PETAL_CHECK(num_classes >= 0, ValueError, "Dataset::one_hot: ", num_classes, " classes");
  impl_->edit().one_hot_classes = num_classes;
  return *this;
}

void Dataset::begin_epoch() {
  if (impl_->config.repeat < 0 && impl_->run && !impl_->run->finished()) return;
  impl_->run.reset();
  if (!impl_->config.map_fn) impl_->config.map_fn = make_map(Preprocess{});
  impl_->run = std::make_unique<Pipeline>(impl_->config, static_cast<std::uint64_t>(impl_->passes));
  ++impl_->passes;
}

void Dataset::begin_pass(std::int64_t pass) {
  PETAL_CHECK(pass >= 0, ValueError, "Dataset::begin_pass: the pass must not be negative, got ", pass);
  impl_->run.reset();
  impl_->passes = pass;
  begin_epoch();
}

std::optional<Batch> Dataset::next() {
  if (!impl_->run) begin_epoch();
  return impl_->run->next();
}

void Dataset::stop() { impl_->run.reset(); }

std::int64_t Dataset::num_records() {
  if (!impl_->record_count) {
    std::int64_t total = 0;
    if (impl_->config.kind == RecordKind::Example) {
      for (const auto& f : impl_->config.files) total += count_tfrecords(f);
    } else {
      total = static_cast<std::int64_t>(impl_->config.files.size());
    }
    impl_->record_count = total;
  }
  return *impl_->record_count;
}

std::int64_t Dataset::steps_per_epoch() {
  const std::int64_t n = num_records();
  const std::int64_t b = impl_->config.batch_size;
  return impl_->config.drop_remainder ? n / b : (n + b - 1) / b;
}

std::int64_t Dataset::cardinality() {
  const DatasetConfig& cfg = impl_->config;
  if (cfg.repeat < 0) return num_records() == 0 ? 0 : -1;
  const std::int64_t n = num_records() * cfg.repeat;
  return cfg.drop_remainder ? n / cfg.batch_size : (n + cfg.batch_size - 1) / cfg.batch_size;
}

std::int64_t Dataset::epochs_started() const { return impl_->passes; }

const std::vector<std::filesystem::path>& Dataset::files() const { return impl_->config.files; }

const std::vector<std::string>& Dataset::class_names() const { return impl_->config.class_names; }

}  // namespace petal::data
