// Whole-model benchmark: MobileNetV2 at 192x192 in petal against torchvision's
// mobilenet_v2 run by /usr/bin/python3 bench/mobilenet_torch.py in a child
// process (the tuned PyTorch environment, same thread count), in one run.
// Rows (throughput in images/s, ratio = petal / PyTorch; memory in MiB,
// ratio = PyTorch / petal, so above 1 is better for petal everywhere):
//   inference_b64, inference_b1   forward only, include_top, random weights
//   frozen_step_b64               frozen base + Flatten + Dense(5), Adam step
//   finetune_step_b64             everything trainable, BN in training mode, SGD momentum
//   finetune_peak_rss             peak resident set of a process doing 3 fine-tuning steps
//   dense_step_b64                the lab's dense model (Flatten, 500, 50, 5), Adam step
//
// --device cuda[:N] [--batch 64,256] times the GPU instead, per batch size B:
//   inference_bB, finetune_step_bB (as above, on the device, each sample ended
//   by a device synchronisation), finetune_peak_device_bB (MiB: the peak of
//   petal's device allocator during the fine-tuning steps, PyTorch's
//   torch.cuda.max_memory_allocated), against the PyTorch with CUDA that
//   --python names (default python3), FP32 on both sides (TF32 off).
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "bench/bench_common.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "nn/nn.hpp"
#include "nn/mobilenet_v2.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

constexpr int kSize = 192;

std::string source_dir() {
  std::string assets = PETAL_SOURCE_ASSETS_DIR;
  const std::size_t slash = assets.rfind('/');
  return slash == std::string::npos ? std::string(".") : assets.substr(0, slash);
}

Tensor images(std::int64_t n) { return uniform({n, kSize, kSize, 3}, -1.0, 1.0); }

Tensor one_hot_targets(std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n) * 5, 0.0f);
  for (std::int64_t i = 0; i < n; ++i) v[i * 5 + i % 5] = 1.0f;
  return from_vector(v, {n, 5});
}

std::shared_ptr<Trainer> finetune_trainer() {
  MobileNetV2Options o;
  o.input_shape = {kSize, kSize, 3};
  o.classes = 5;  // global average pool + Dense(5), like torchvision's classifier
  auto model = std::make_shared<MobileNetV2>(o);
  auto trainer = std::make_shared<Trainer>(model);
  trainer->compile(std::make_shared<SGD>(0.01, 0.9), Loss::categorical_crossentropy());
  model->train();
  return trainer;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Extracts "key": value from one flat JSON line of the script.
std::string json_field(const std::string& line, const std::string& key) {
  const std::string pattern = "\"" + key + "\": ";
  std::size_t pos = line.find(pattern);
  if (pos == std::string::npos) return "";
  pos += pattern.size();
  if (line[pos] == '"') return line.substr(pos + 1, line.find('"', pos + 1) - pos - 1);
  return line.substr(pos, line.find_first_of(",}", pos) - pos);
}

std::map<std::string, double> parse_rows(const std::string& out) {
  std::map<std::string, double> rows;
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t end = out.find('\n', pos);
    const std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    const std::string row = json_field(line, "row"), value = json_field(line, "value");
    if (!row.empty() && !value.empty()) rows[row] = std::atof(value.c_str());
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return rows;
}

std::map<std::string, double> torch_rows(const std::string& script, std::int64_t batch, int threads, int repeats,
                                         const std::string& only, bool rss) {
  std::vector<std::string> argv = {"/usr/bin/python3", script, "--batch", std::to_string(batch), "--threads",
                                   std::to_string(threads), "--repeats", std::to_string(repeats)};
  if (rss) argv.push_back("--rss");
  if (!only.empty()) argv.insert(argv.end(), {"--only", only});
  std::string out;
  const int rc = bench::run_child(argv, bench::torch_environment(threads), out);
  if (rc != 0) std::fprintf(stderr, "mobilenet: the PyTorch reference failed (exit %d); reported as null\n", rc);
  return parse_rows(out);
}

// The petal rows (images/s), each timed as the median of `repeats` calls.
std::map<std::string, double> petal_rows(std::int64_t batch, int repeats, const std::string& only) {
  std::map<std::string, double> rows;
  auto wanted = [&](const std::string& row) { return only.empty() || row.find(only) != std::string::npos; };
  if (wanted("inference_b64") || wanted("inference_b1")) {
    MobileNetV2 model(Shape{kSize, kSize, 3}, 1.0, true);
    model.eval();
    ag::NoGradGuard no_grad;
    for (const auto& [row, n] : {std::pair<std::string, std::int64_t>{"inference_b64", batch}, {"inference_b1", 1}}) {
      if (!wanted(row)) continue;
      const ag::Variable x(images(n));
      rows[row] = static_cast<double>(n) / bench::median_seconds([&] { model(x); }, repeats);
    }
  }
  if (wanted("frozen_step_b64")) {
    auto base = std::make_shared<MobileNetV2>(Shape{kSize, kSize, 3}, 1.0, false);
    base->set_trainable(false);
    auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        base, std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
    Trainer trainer(model);
    trainer.compile(std::make_shared<Adam>(1e-3), Loss::categorical_crossentropy());
    model->train();
    const Batch b{images(batch), one_hot_targets(batch)};
    rows["frozen_step_b64"] = static_cast<double>(batch) / bench::median_seconds([&] { trainer.train_step(b); }, repeats);
  }
  if (wanted("finetune_step_b64")) {
    auto trainer = finetune_trainer();
    const Batch b{images(batch), one_hot_targets(batch)};
    rows["finetune_step_b64"] =
        static_cast<double>(batch) / bench::median_seconds([&] { trainer->train_step(b); }, repeats);
  }
  if (wanted("dense_step_b64")) {
    auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        std::make_shared<Flatten>(Shape{kSize, kSize, 3}), std::make_shared<Dense>(500, "relu"),
        std::make_shared<Dense>(50, "relu"), std::make_shared<Dense>(5, "softmax")});
    Trainer trainer(model);
    trainer.compile(std::make_shared<Adam>(1e-3), Loss::categorical_crossentropy());
    model->train();
    const Batch b{uniform({batch, kSize, kSize, 3}, 0.0, 1.0), one_hot_targets(batch)};
    rows["dense_step_b64"] = static_cast<double>(batch) / bench::median_seconds([&] { trainer.train_step(b); }, repeats);
  }
  return rows;
}

// Runs in a child process of its own (--rss-child): 3 fine-tuning steps,
// then the peak resident set.
int rss_child(std::int64_t batch) {
  auto trainer = finetune_trainer();
  const Batch b{images(batch), one_hot_targets(batch)};
  for (int i = 0; i < 3; ++i) trainer->train_step(b);
  std::printf("{\"row\": \"finetune_peak_rss\", \"value\": %.1f, \"unit\": \"MiB\"}\n", peak_rss_mib());
  return 0;
}

// ---- --device cuda ----

std::vector<std::int64_t> parse_batches(const std::string& list) {
  std::vector<std::int64_t> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    const std::int64_t b = std::atoll(list.substr(pos, comma - pos).c_str());
    if (b < 1) return {};
    out.push_back(b);
    pos = comma + 1;
  }
  return out;
}

std::string batch_row(const char* row, std::int64_t batch) { return std::string(row) + "_b" + std::to_string(batch); }

std::map<std::string, double> petal_cuda_rows(Device device, const std::vector<std::int64_t>& batches, int repeats) {
  std::map<std::string, double> rows;
  auto sync = [&] { cuda::synchronize(device.index); };
  {
    MobileNetV2 model(Shape{kSize, kSize, 3}, 1.0, true);
    model.eval();
    model.to(device);
    ag::NoGradGuard no_grad;
    for (std::int64_t b : batches) {
      const ag::Variable x(images(b).to(device));
      rows[batch_row("inference", b)] = static_cast<double>(b) / bench::median_seconds([&] {
        model(x);
        sync();
      }, repeats, 2);
    }
  }
  for (std::int64_t b : batches) {
    cuda::empty_cache(device.index);
    cuda::reset_peak_memory(device.index);
    auto trainer = finetune_trainer();
    trainer->model().to(device);
    const Batch batch{images(b).to(device), one_hot_targets(b).to(device)};
    rows[batch_row("finetune_step", b)] = static_cast<double>(b) / bench::median_seconds([&] {
      trainer->train_step(batch);
      sync();
    }, repeats, 2);
    rows[batch_row("finetune_peak_device", b)] =
        static_cast<double>(cuda::memory_stats(device.index).peak_bytes) / (1024.0 * 1024.0);
  }
  return rows;
}

std::map<std::string, double> torch_cuda_rows(const std::string& python, const std::string& script, Device device,
                                              std::int64_t batch, int repeats) {
  std::string out;
  const int rc = bench::run_child({python, script, "--device", device.str(), "--batch", std::to_string(batch),
                                   "--repeats", std::to_string(repeats)},
                                  {}, out);
  if (rc != 0)
    std::fprintf(stderr, "mobilenet: the PyTorch reference (%s) failed for batch %lld (exit %d); reported as null\n",
                 python.c_str(), static_cast<long long>(batch), rc);
  return parse_rows(out);
}

// One result row of either table (CPU or CUDA): a JSON object in the shared
// bench format, or a line of the text table whose first column is name_width
// wide. set_where adds the field that says what ran the row ("threads" or
// "device"). Memory rows are in MiB with ratio = reference / petal; the
// others in img/s with ratio = petal / reference. reference is null when
// there is none to compare with.
template <class SetWhere>
void print_row(bool json, int name_width, const std::string& name, bool memory, std::int64_t batch, double value,
               const double* reference, SetWhere&& set_where) {
  const double ratio = reference ? (memory ? *reference / value : value / *reference) : 0.0;
  if (json) {
    bench::JsonRow row;
    row.set("bench", "mobilenet").set("name", name).set("unit", memory ? "MiB" : "img/s");
    set_where(row);
    row.set("batch", static_cast<long long>(batch)).set("petal", value);
    if (reference) row.set("reference", *reference).set("ratio", ratio);
    else row.set_raw("reference", "null").set_raw("ratio", "null");
    std::printf("%s\n", row.str().c_str());
  } else {
    char ref_text[32] = "-", ratio_text[32] = "-";
    if (reference) {
      std::snprintf(ref_text, sizeof ref_text, "%.1f", *reference);
      std::snprintf(ratio_text, sizeof ratio_text, "%.2f", ratio);
    }
    std::printf("%-*s %8s %12.1f %12s %7s\n", name_width, name.c_str(), memory ? "MiB" : "img/s", value, ref_text,
                ratio_text);
  }
}

int cuda_main(int argc, char** argv) {
  const bool json = bench::has_flag(argc, argv, "--json");
  const Device device = usable_device(bench::flag_value(argc, argv, "--device", "cuda"), "mobilenet");
  const std::vector<std::int64_t> batches = parse_batches(bench::flag_value(argc, argv, "--batch", "64,256"));
  const int repeats = std::atoi(bench::flag_value(argc, argv, "--repeats", "10").c_str());
  const std::string python = bench::flag_value(argc, argv, "--python", "python3");
  const std::string script =
      bench::flag_value(argc, argv, "--torch-script", source_dir() + "/bench/mobilenet_torch.py");
  if (batches.empty() || repeats < 1) {
    std::fprintf(stderr, "mobilenet: --batch must list positive sizes (e.g. 64,256), --repeats be positive\n");
    return 2;
  }
  std::map<std::string, double> reference;
  if (!bench::has_flag(argc, argv, "--no-reference"))
    for (std::int64_t b : batches)
      for (const auto& [k, v] : torch_cuda_rows(python, script, device, b, repeats)) reference[k] = v;
  const std::map<std::string, double> petal = petal_cuda_rows(device, batches, repeats);

  if (!json)
    std::printf("mobilenet on %s (%s): 192x192, FP32; ratio > 1 favours petal\n%-26s %8s %12s %12s %7s\n",
                device.str().c_str(), cuda::device_name(device.index).c_str(), "row", "unit", "petal", "torch",
                "ratio");
  for (std::int64_t b : batches) {
    for (const char* kind : {"inference", "finetune_step", "finetune_peak_device"}) {
      const std::string name = batch_row(kind, b);
      if (!petal.count(name)) continue;
      const bool memory = std::string(kind) == "finetune_peak_device";
      const double value = petal.at(name);
      const auto ref = reference.find(name);
      const bool has_ref = ref != reference.end() && value > 0 && ref->second > 0;
      print_row(json, 26, name, memory, b, value, has_ref ? &ref->second : nullptr,
                [&](bench::JsonRow& row) { row.set("device", device.str()); });
    }
  }
  return 0;
}

void print_help() {
  std::printf(
      "usage: mobilenet [--json] [--threads N] [--batch N] [--repeats N] [--only ROW] [--no-reference]\n"
      "                 [--torch-script PATH] [--quick] [--device cpu|cuda[:N] [--python PY]]\n"
      "  MobileNetV2 at 192x192 in petal vs torchvision's mobilenet_v2 (channels_last) run by\n"
      "  /usr/bin/python3 bench/mobilenet_torch.py in a child process with the tuned environment.\n"
      "  Rows: inference_b64, inference_b1, frozen_step_b64, finetune_step_b64, finetune_peak_rss,\n"
      "  dense_step_b64. ratio = petal / PyTorch throughput, PyTorch / petal memory.\n"
      "  --threads N   threads on both sides (default: petal's default)\n"
      "  --batch N     batch of the _b64 rows (default 64; --quick: 8)\n"
      "  --repeats N   timed calls per row, median (default 5; --quick: 2)\n"
      "  --only ROW    rows whose name contains ROW\n"
      "  --device cuda[:N]  time the GPU instead: inference_bB, finetune_step_bB, finetune_peak_device_bB\n"
      "                for each B of --batch LIST (default 64,256), --repeats N (default 10), against\n"
      "                --python PY (default python3; a PyTorch with CUDA) running the same script\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::has_flag(argc, argv, "--help") || bench::has_flag(argc, argv, "-h")) {
    print_help();
    return 0;
  }
  if (bench::flag_value(argc, argv, "--device", "cpu") != "cpu") {
    try {
      return cuda_main(argc, argv);
    } catch (const petal::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());  // names the op ("mobilenet: ...")
      return 1;
    }
  }
  const bool quick = bench::has_flag(argc, argv, "--quick");
  const bool json = bench::has_flag(argc, argv, "--json");
  const int threads = std::atoi(bench::flag_value(argc, argv, "--threads", std::to_string(num_threads())).c_str());
  const std::int64_t batch = std::atoll(bench::flag_value(argc, argv, "--batch", quick ? "8" : "64").c_str());
  const int repeats = std::atoi(bench::flag_value(argc, argv, "--repeats", quick ? "2" : "5").c_str());
  const std::string only = bench::flag_value(argc, argv, "--only", "");
  const std::string script =
      bench::flag_value(argc, argv, "--torch-script", source_dir() + "/bench/mobilenet_torch.py");
  if (threads < 1 || batch < 1 || repeats < 1) {
    std::fprintf(stderr, "mobilenet: --threads, --batch and --repeats must be positive\n");
    return 2;
  }
  set_num_threads(threads);
  if (bench::has_flag(argc, argv, "--rss-child")) return rss_child(batch);

  const bool with_reference = !bench::has_flag(argc, argv, "--no-reference");
  std::map<std::string, double> reference, petal;
  // Memory first, while this process is still small: Linux keeps a process's
  // peak RSS across fork + exec, so a child started after the big rows below
  // would report this process's peak instead of its own.
  if (only.empty() || std::string("finetune_peak_rss").find(only) != std::string::npos) {
    std::string out;
    const int rc = bench::run_child({bench::self_executable(), "--rss-child", "--threads", std::to_string(threads),
                                     "--batch", std::to_string(batch)},
                                    {}, out);
    const auto rows = parse_rows(out);
    if (rc == 0 && rows.count("finetune_peak_rss")) petal["finetune_peak_rss"] = rows.at("finetune_peak_rss");
    if (with_reference)
      for (const auto& [k, v] : torch_rows(script, batch, threads, repeats, "", true)) reference[k] = v;
  }
  if (with_reference)
    for (const auto& [k, v] : torch_rows(script, batch, threads, repeats, only, false)) reference[k] = v;
  for (const auto& [k, v] : petal_rows(batch, repeats, only)) petal[k] = v;

  const char* order[] = {"inference_b64", "inference_b1", "frozen_step_b64", "finetune_step_b64", "finetune_peak_rss",
                         "dense_step_b64"};
  if (!json)
    std::printf("mobilenet: 192x192, batch %lld, %d thread(s); ratio > 1 favours petal\n%-20s %8s %12s %12s %7s\n",
                static_cast<long long>(batch), threads, "row", "unit", "petal", "torch", "ratio");
  for (const char* name : order) {
    if (!petal.count(name)) continue;
    const bool memory = std::string(name) == "finetune_peak_rss";
    const double value = petal.at(name);
    const auto ref = reference.find(name);
    const bool has_ref = ref != reference.end() && value > 0;
    print_row(json, 20, name, memory, batch, value, has_ref ? &ref->second : nullptr,
              [&](bench::JsonRow& row) { row.set("threads", threads); });
  }
  return 0;
}
