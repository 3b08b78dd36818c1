// Whole-model benchmark: MobileNetV2 at 192x192, float32, petal against the
// strongest peers, each at its best, on the same weights and the same input.
//
// CPU (default). For every row petal writes the model's weights (safetensors,
// Keras names), its ONNX export (inference rows), the input batch and its own
// output (inference) or first-step loss (training) into a temporary folder;
// bench/mobilenet_peers.py then runs each peer in a child process of its own
// on those files, trying each of the peer's standard fast paths:
//   torch        eager under inference_mode, optimize_for_inference (frozen
//                TorchScript), torch.compile (when it works; --no-compile skips)
//   onnxruntime  all graph optimisations, on petal's ONNX export
//   tensorflow   the Keras model in tf.function (and with XLA for inference)
// Rounds alternate peers and petal (--rounds, default 2), each side keeping
// its best median; PyTorch's OPENBLAS_NUM_THREADS alternates between the
// thread count and 1 across rounds (BLAS threads: whichever is faster; "/blas1"
// in the variant), and PyTorch runs with both OpenMP wait policies (the
// default spinning and OMP_WAIT_POLICY=PASSIVE, "/omp_passive").
// Every figure comes with the max abs difference between petal's and the
// peer's outputs (probabilities for inference, the first step's loss for
// training rows).
// Rows (images/s; ratio = petal / best peer, so above 1 favours petal):
//   inference_b64, inference_b1   forward only, include_top (1000 classes);
//                                 b1 timed over at least 30 calls; ImageNet
//                                 weights when the assets have them; petal
//                                 with its weights declared constant
//                                 (nn::ConstantWeights: packed once, as ONNX
//                                 Runtime's session packs them), and without
//                                 (petal_plain, on a second copy of the model)
//   frozen_step_b64               frozen base (BN inference) + Flatten + Dense(5), Adam
//   finetune_step_b64             the step of flowers_transfer --fine-tune: the
//                                 whole base trainable but BN (inference mode,
//                                 gamma/beta fixed), Flatten + Dense(5), Adam 1e-5
//   finetune_trainbn_step_b64     everything trainable, BN in training mode,
//                                 GAP + Dense(5), SGD momentum (the old finetune row)
//   dense_step_b64                the lab's dense model (Flatten, 500, 50, 5), Adam
//   finetune_peak_rss             MiB, ratio = best peer / petal: peak resident set
//                                 of a process doing 3 finetune_step_b64 steps; the
//                                 peers run with default malloc settings and their
//                                 import baseline is reported apart (import_mib)
// JSON rows carry peer (the winner), variant (its winning fast path), peers
// ({peer: figure} for every peer measured), variants (every fast path tried),
// max_abs_diff, versions, openblas_core, the CPU guards and the CPU model.
//
// --device cuda[:N] [--batch 64,256] times the GPU instead, per batch size B:
//   inference_bB, finetune_step_bB (here still everything trainable, BN in
//   training mode, SGD: the CUDA comparison has not moved to the new rows),
//   finetune_peak_device_bB (MiB: the peak of petal's device allocator during
//   the fine-tuning steps, PyTorch's torch.cuda.max_memory_allocated), against
//   the PyTorch with CUDA that --python names (default python3) running
//   bench/mobilenet_torch.py, FP32 on both sides (TF32 off).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "bench/bench_common.hpp"
#include "core/assets.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "nn/json.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
#include "nn/onnx_export.hpp"
#include "nn/weights_io.hpp"

using namespace petal;
using namespace petal::nn;
namespace fs = std::filesystem;

namespace {

constexpr int kSize = 192;
constexpr int kMinCallsB1 = 30;

using bench::source_dir;

Tensor images(std::int64_t n) { return uniform({n, kSize, kSize, 3}, -1.0, 1.0); }

Tensor one_hot_targets(std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n) * 5, 0.0f);
  for (std::int64_t i = 0; i < n; ++i) v[i * 5 + i % 5] = 1.0f;
  return from_vector(v, {n, 5});
}

// The ImageNet weights of the assets (fetch_assets.sh) into a MobileNetV2,
// by name, skipping a classifier of another shape; false (random weights
// stay) without them. Real weights make the outputs, and so the agreement
// check, meaningful: with random ones every probability is about 1/classes.
bool load_imagenet(MobileNetV2& model) {
  try {
    LoadOptions options;
    options.by_name = true;
    options.skip_mismatch = true;
    nn::load_weights(model, find_asset("mobilenet_v2_1.0_imagenet.safetensors"), options);
    return true;
  } catch (const petal::Error&) {
    return false;
  }
}

// Everything trainable, BN in training mode, GAP + Dense(5), SGD momentum
// (finetune_trainbn_step_b64 on the CPU, finetune_step_bB on CUDA).
std::shared_ptr<Trainer> finetune_trainer(bool* imagenet = nullptr) {
  MobileNetV2Options o;
  o.input_shape = {kSize, kSize, 3};
  o.classes = 5;  // global average pool + Dense(5), like torchvision's classifier
  auto model = std::make_shared<MobileNetV2>(o);
  const bool loaded = load_imagenet(*model);
  if (imagenet) *imagenet = loaded;
  auto trainer = std::make_shared<Trainer>(model);
  trainer->compile(std::make_shared<SGD>(0.01, 0.9), Loss::categorical_crossentropy());
  model->train();
  return trainer;
}

// flowers_transfer's model: MobileNetV2 base + Flatten + Dense(5, softmax),
// Adam. frozen: the base is not trainable (frozen_step_b64); else the base
// trains with its BN layers frozen in inference mode, as --fine-tune runs it.
std::shared_ptr<Trainer> transfer_trainer(bool frozen, bool* imagenet = nullptr) {
  auto base = std::make_shared<MobileNetV2>(Shape{kSize, kSize, 3}, 1.0, false);
  const bool loaded = load_imagenet(*base);
  if (imagenet) *imagenet = loaded;
  if (frozen) {
    base->set_trainable(false);
  } else {
    base->set_trainable(true);
    base->freeze_batch_norm();
  }
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      base, std::make_shared<Flatten>(), std::make_shared<Dense>(5, "softmax")});
  model->build(Shape{kSize, kSize, 3});
  auto trainer = std::make_shared<Trainer>(model);
  trainer->compile(std::make_shared<Adam>(frozen ? 1e-3 : 1e-5), Loss::categorical_crossentropy());
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

// ---- CPU: petal against the peers ----

void write_floats(const fs::path& path, const Tensor& t) {
  const Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.raw_data()), static_cast<std::streamsize>(c.nbytes()));
  if (!out) throw IOError("mobilenet: cannot write '" + path.string() + "'");
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text << "\n";
  if (!out) throw IOError("mobilenet: cannot write '" + path.string() + "'");
}

// One row on petal's side: what to time (one call = `images` images).
struct PetalRow {
  std::function<void()> call;
  // Inference rows: `call` runs the model with its weights declared
  // constant (nn::ConstantWeights, packed once, as ONNX Runtime's session
  // does); `plain_call` a second copy of it without, as model(x) runs
  // outside such a scope.
  std::function<void()> plain_call;
  std::int64_t images = 0;
  std::string weights = "random";  // or "imagenet"
};

// Builds the row's model, writes the files that the peers read (weights,
// ONNX export, input, petal's output or first-step loss) into dir and
// returns the timed call.
PetalRow make_petal_row(const std::string& row, std::int64_t batch, const fs::path& dir) {
  PetalRow r;
  const fs::path stem = dir / row;
  auto file = [&](const char* ext) { return fs::path(stem.string() + ext); };
  if (row.rfind("inference", 0) == 0) {
    auto make_model = [&r] {
      auto model = std::make_shared<MobileNetV2>(Shape{kSize, kSize, 3}, 1.0, true);
      if (load_imagenet(*model)) r.weights = "imagenet";
      model->eval();
      return model;
    };
    auto model = make_model(), plain = make_model();
    r.images = row == "inference_b1" ? 1 : batch;
    auto x = std::make_shared<ag::Variable>(images(r.images));
    save_weights(*model, file(".safetensors"));
    onnx::export_model(*model, file(".onnx"));
    write_floats(file(".x.f32"), x->data());
    {
      ag::NoGradGuard no_grad;
      write_floats(file(".y.f32"), (*model)(*x).data());
    }
    auto constant = std::make_shared<ConstantWeights>(*model);
    r.call = [model, constant, x] {
      ag::NoGradGuard no_grad;
      (*model)(*x);
    };
    r.plain_call = [plain, x] {
      ag::NoGradGuard no_grad;
      (*plain)(*x);
    };
    return r;
  }
  r.images = batch;
  std::shared_ptr<Trainer> trainer;
  Tensor x = images(batch);
  bool imagenet = false;
  if (row == "frozen_step_b64") {
    trainer = transfer_trainer(true, &imagenet);
  } else if (row == "finetune_step_b64") {
    trainer = transfer_trainer(false, &imagenet);
  } else if (row == "finetune_trainbn_step_b64") {
    trainer = finetune_trainer(&imagenet);
  } else if (row == "dense_step_b64") {
    auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
        std::make_shared<Flatten>(Shape{kSize, kSize, 3}), std::make_shared<Dense>(500, "relu"),
        std::make_shared<Dense>(50, "relu"), std::make_shared<Dense>(5, "softmax")});
    model->build(Shape{kSize, kSize, 3});
    trainer = std::make_shared<Trainer>(model);
    trainer->compile(std::make_shared<Adam>(1e-3), Loss::categorical_crossentropy());
    model->train();
    x = uniform({batch, kSize, kSize, 3}, 0.0, 1.0);
  } else {
    throw ValueError("mobilenet: unknown row '" + row + "'");
  }
  if (imagenet) r.weights = "imagenet";
  save_weights(trainer->model(), file(".safetensors"));
  write_floats(file(".x.f32"), x);
  auto b = std::make_shared<Batch>(Batch{x, one_hot_targets(batch)});
  const double first_loss = trainer->train_step(*b);  // on the weights just saved
  write_text(file(".loss"), nn::json::number(first_loss));
  r.call = [trainer, b] { trainer->train_step(*b); };
  return r;
}

// One fast path of one peer, as bench/mobilenet_peers.py reported it.
struct PeerFigure {
  std::string peer, variant, version, openblas_core, error;
  double value = NAN, max_abs_diff = NAN, import_mib = NAN;
};

std::string string_field(const nn::json::Value& v, const char* key) {
  const nn::json::Value* f = v.find(key);
  return f && f->is_string() ? std::string(f->as_string(key)) : std::string();
}

double number_field(const nn::json::Value& v, const char* key) {
  const nn::json::Value* f = v.find(key);
  return f && f->is_number() ? f->as_number(key) : NAN;
}

struct PeerRun {
  std::string python, script;
  fs::path dir;
  int threads = 1, repeats = 5;
  bool no_compile = false;
};

// Runs one peer on one row; `suffix` is appended to the variant names (the
// environment variant, e.g. "/omp_passive").
std::vector<PeerFigure> run_peer(const PeerRun& p, const std::string& peer, const std::string& row, int repeats,
                                 const std::map<std::string, std::string>& env, const std::string& suffix = "") {
  std::vector<std::string> argv = {p.python, p.script, "--peer", peer, "--row", row, "--dir", p.dir.string(),
                                   "--threads", std::to_string(p.threads), "--repeats", std::to_string(repeats)};
  if (p.no_compile) argv.push_back("--no-compile");
  std::string out;
  const int rc = bench::run_child(argv, env, out);
  std::vector<PeerFigure> figures;
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t end = std::min(out.find('\n', pos), out.size());
    const std::string line = out.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] != '{') continue;
    try {
      const nn::json::Value v = nn::json::parse(line, "mobilenet_peers.py");
      PeerFigure f;
      f.peer = peer;
      f.variant = string_field(v, "variant");
      f.version = string_field(v, "version");
      f.openblas_core = string_field(v, "openblas_core");
      f.error = string_field(v, "error");
      f.value = number_field(v, "value");
      f.max_abs_diff = number_field(v, "max_abs_diff");
      f.import_mib = number_field(v, "import_mib");
      const std::string blas = string_field(v, "blas_threads");
      if (!blas.empty() && blas != std::to_string(p.threads) && f.error.empty()) f.variant += "/blas" + blas;
      f.variant += suffix;
      figures.push_back(f);
    } catch (const petal::Error& e) {
      std::fprintf(stderr, "mobilenet: unreadable line from %s: %s\n", peer.c_str(), e.what());
    }
  }
  if (rc != 0) {
    PeerFigure f;
    f.peer = peer;
    f.variant = "-";
    f.error = "exit status " + std::to_string(rc);
    figures.push_back(f);
    std::fprintf(stderr, "mobilenet: the %s reference for %s failed (exit %d)\n", peer.c_str(), row.c_str(), rc);
  }
  return figures;
}

// Which peers can run a row (ONNX Runtime only does inference).
bool peer_runs(const std::string& peer, const std::string& row) {
  if (peer == "onnxruntime") return row.rfind("inference", 0) == 0;
  if (peer == "tensorflow") return true;
  return peer == "torch";
}

struct RowResult {
  bool memory = false;
  double petal = NAN;
  double petal_plain = NAN;  // inference rows: without nn::ConstantWeights
  std::string weights;
  std::map<std::string, PeerFigure> variants;  // "peer/variant" -> best figure over the rounds
  std::vector<std::string> errors;            // "peer/variant: text"
};

// Keeps the better figure of a fast path over the rounds.
void add_figures(RowResult& r, const std::vector<PeerFigure>& figures) {
  for (const PeerFigure& f : figures) {
    const std::string key = f.peer + "/" + f.variant;
    if (!f.error.empty() || !std::isfinite(f.value)) {
      const std::string text = key + ": " + (f.error.empty() ? "no value" : f.error);
      if (std::find(r.errors.begin(), r.errors.end(), text) == r.errors.end()) r.errors.push_back(text);
      continue;
    }
    auto it = r.variants.find(key);
    const bool better = it == r.variants.end() || (r.memory ? f.value < it->second.value : f.value > it->second.value);
    if (better) r.variants[key] = f;
  }
}

std::string json_object(const std::map<std::string, double>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ", ";
    out += nn::json::quote(k) + ": " + (std::isfinite(v) ? nn::json::number(v) : std::string("null"));
  }
  return out + "}";
}

std::string json_strings(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ", ";
    out += nn::json::quote(k) + ": " + nn::json::quote(v);
  }
  return out + "}";
}

void print_cpu_row(bool json, const std::string& name, const RowResult& r, std::int64_t batch, int threads) {
  // The best fast path of each peer, then the best peer.
  std::map<std::string, const PeerFigure*> best;
  for (const auto& [key, f] : r.variants) {
    auto it = best.find(f.peer);
    if (it == best.end() || (r.memory ? f.value < it->second->value : f.value > it->second->value)) best[f.peer] = &f;
  }
  const PeerFigure* winner = nullptr;
  for (const auto& [peer, f] : best)
    if (!winner || (r.memory ? f->value < winner->value : f->value > winner->value)) winner = f;
  const bool has_ratio = winner && std::isfinite(r.petal) && r.petal > 0;
  const double ratio = has_ratio ? (r.memory ? winner->value / r.petal : r.petal / winner->value) : NAN;
  if (!json) {
    char ref[64] = "-", ratio_text[32] = "-", diff[32] = "-";
    if (winner) {
      std::snprintf(ref, sizeof ref, "%.1f", winner->value);
      if (std::isfinite(winner->max_abs_diff)) std::snprintf(diff, sizeof diff, "%.2g", winner->max_abs_diff);
    }
    if (has_ratio) std::snprintf(ratio_text, sizeof ratio_text, "%.2f", ratio);
    const std::string peer = winner ? winner->peer + "/" + winner->variant : "-";
    std::printf("%-26s %6s %9.1f %9s %7s  %-40s %8s\n", name.c_str(), r.memory ? "MiB" : "img/s", r.petal, ref,
                ratio_text, peer.c_str(), diff);
    if (std::isfinite(r.petal_plain))
      std::printf("%-26s   (petal without nn::ConstantWeights: %.1f img/s)\n", "", r.petal_plain);
    for (const std::string& e : r.errors) std::printf("%-26s   (%s)\n", "", e.c_str());
    return;
  }
  std::map<std::string, double> peers, variants, import_mib;
  std::map<std::string, std::string> versions;
  std::map<std::string, double> diffs;
  std::string core;
  for (const auto& [peer, f] : best) {
    peers[peer] = f->value;
    diffs[peer] = f->max_abs_diff;
    if (std::isfinite(f->import_mib)) import_mib[peer] = f->import_mib;
  }
  for (const auto& [key, f] : r.variants) {
    variants[key] = f.value;
    versions[f.peer] = f.version;
    if (core.empty()) core = f.openblas_core;
  }
  bench::JsonRow row;
  row.set("bench", "mobilenet").set("name", name).set("unit", r.memory ? "MiB" : "img/s").set("threads", threads);
  row.set("batch", static_cast<long long>(name == "inference_b1" ? 1 : batch)).set("petal", r.petal);
  if (std::isfinite(r.petal_plain)) row.set("petal_variant", "constant_weights").set("petal_plain", r.petal_plain);
  if (winner) {
    row.set("peer", winner->peer).set("variant", winner->variant).set("reference", winner->value);
    if (has_ratio) row.set("ratio", ratio);
    else row.set_raw("ratio", "null");
    row.set("max_abs_diff", winner->max_abs_diff);
  } else {
    row.set_raw("peer", "null").set_raw("variant", "null").set_raw("reference", "null").set_raw("ratio", "null");
    row.set_raw("max_abs_diff", "null");
  }
  row.set_raw("peers", json_object(peers)).set_raw("variants", json_object(variants));
  row.set_raw("max_abs_diffs", json_object(diffs));
  if (r.memory) row.set_raw("import_mib", json_object(import_mib));
  row.set_raw("versions", json_strings(versions)).set("openblas_core", core);
  if (!r.weights.empty()) row.set("weights", r.weights);
  std::string errors = "[";
  for (const std::string& e : r.errors) {
    if (errors.size() > 1) errors += ", ";
    errors += nn::json::quote(e);
  }
  row.set_raw("errors", errors + "]");
  row.set_raw("guards", bench::guards_json()).set("cpu", bench::cpu_model());
  std::printf("%s\n", row.str().c_str());
  std::fflush(stdout);
}

// Runs in a child process of its own (--rss-child): writes the
// finetune_peak_rss files into --dir, runs 3 finetune_step_b64 steps and
// prints the peak resident set.
int rss_child(std::int64_t batch, const fs::path& dir) {
  auto trainer = transfer_trainer(false);
  const Tensor x = images(batch);
  save_weights(trainer->model(), dir / "finetune_peak_rss.safetensors");
  write_floats(dir / "finetune_peak_rss.x.f32", x);
  const Batch b{x, one_hot_targets(batch)};
  const double first_loss = trainer->train_step(b);
  write_text(dir / "finetune_peak_rss.loss", nn::json::number(first_loss));
  for (int i = 0; i < 2; ++i) trainer->train_step(b);
  std::printf("{\"row\": \"finetune_peak_rss\", \"value\": %.1f, \"unit\": \"MiB\"}\n", peak_rss_mib());
  return 0;
}

int cpu_main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  const bool json = bench::has_flag(argc, argv, "--json");
  const int threads = std::atoi(bench::flag_value(argc, argv, "--threads", std::to_string(num_threads())).c_str());
  const std::int64_t batch = std::atoll(bench::flag_value(argc, argv, "--batch", quick ? "8" : "64").c_str());
  const int repeats = std::atoi(bench::flag_value(argc, argv, "--repeats", quick ? "2" : "5").c_str());
  const int rounds = std::atoi(bench::flag_value(argc, argv, "--rounds", quick ? "1" : "2").c_str());
  const std::string only = bench::flag_value(argc, argv, "--only", "");
  if (threads < 1 || batch < 1 || repeats < 1 || rounds < 1) {
    std::fprintf(stderr, "mobilenet: --threads, --batch, --repeats and --rounds must be positive\n");
    return 2;
  }
  set_num_threads(threads);
  char dir_template[] = "/tmp/petal-mobilenet-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    std::fprintf(stderr, "mobilenet: cannot create a temporary folder in /tmp\n");
    return 1;
  }
  const fs::path dir = dir_template;
  if (bench::has_flag(argc, argv, "--rss-child")) {
    const int rc = rss_child(batch, bench::flag_value(argc, argv, "--dir", dir.string()));
    fs::remove_all(dir);
    return rc;
  }
  PeerRun run;
  run.python = bench::reference_python(argc, argv);
  run.script = bench::flag_value(argc, argv, "--peer-script", source_dir() + "/bench/mobilenet_peers.py");
  run.dir = dir;
  run.threads = threads;
  run.no_compile = bench::has_flag(argc, argv, "--no-compile");
  std::vector<std::string> peers;
  if (!bench::has_flag(argc, argv, "--no-reference"))
    peers = bench::split_list(bench::flag_value(argc, argv, "--peers", "onnxruntime,torch,tensorflow"));
  for (const std::string& p : peers)
    if (p != "onnxruntime" && p != "torch" && p != "tensorflow") {
      std::fprintf(stderr, "mobilenet: unknown peer '%s' (onnxruntime, torch, tensorflow)\n", p.c_str());
      return 2;
    }
  auto wanted = [&](const std::string& row) { return only.empty() || row.find(only) != std::string::npos; };

  if (!json)
    std::printf("mobilenet: 192x192, batch %lld, %d thread(s), %d round(s), peers run by %s\n"
                "%s; ratio > 1 favours petal\n%-26s %6s %9s %9s %7s  %-40s %8s\n",
                static_cast<long long>(batch), threads, rounds, run.python.c_str(), bench::cpu_model().c_str(), "row",
                "unit", "petal", "best", "ratio", "best peer/variant", "max diff");
  std::fflush(stdout);
  int status = 0;
  try {
    // Memory first, while this process is still small: Linux keeps a
    // process's peak RSS across fork + exec, so a child started after the big
    // rows below would report this process's peak instead of its own.
    if (wanted("finetune_peak_rss")) {
      RowResult r;
      r.memory = true;
      std::string out;
      const int rc = bench::run_child({bench::self_executable(), "--rss-child", "--threads", std::to_string(threads),
                                       "--batch", std::to_string(batch), "--dir", dir.string()},
                                      {}, out);
      const auto rows = parse_rows(out);
      if (rc == 0 && rows.count("finetune_peak_rss")) r.petal = rows.at("finetune_peak_rss");
      if (rc == 0)
        for (const std::string& peer : peers)
          if (peer != "onnxruntime")
            add_figures(r, run_peer(run, peer, "finetune_peak_rss", 1, bench::reference_environment(threads, threads, false)));
      print_cpu_row(json, "finetune_peak_rss", r, batch, threads);
    }
    for (const char* name : {"inference_b64", "inference_b1", "frozen_step_b64", "finetune_step_b64",
                             "finetune_trainbn_step_b64", "dense_step_b64"}) {
      if (!wanted(name)) continue;
      RowResult r;
      const PetalRow petal = make_petal_row(name, batch, dir);
      r.weights = petal.weights;
      const int calls = std::string(name) == "inference_b1" ? std::max(kMinCallsB1, repeats) : repeats;
      // Rounds alternate the peers and petal; each fast path keeps its best
      // median, which discounts bursts of load from other processes.
      for (int round = 0; round < rounds; ++round) {
        for (const std::string& peer : peers) {
          if (!peer_runs(peer, name)) continue;
          if (peer != "torch") {
            add_figures(r, run_peer(run, peer, name, calls, bench::reference_environment(threads, threads, true)));
            continue;
          }
          // PyTorch's OpenMP threads spin while they wait (GNU libgomp's
          // default); on a shared machine whose other core is busy that made
          // 2 threads 10x slower than 1, so both wait policies run.
          const int blas_threads = round % 2 == 1 ? 1 : threads;
          std::map<std::string, std::string> env = bench::reference_environment(threads, blas_threads, true);
          add_figures(r, run_peer(run, peer, name, calls, env));
          env["OMP_WAIT_POLICY"] = "PASSIVE";
          add_figures(r, run_peer(run, peer, name, calls, env, "/omp_passive"));
        }
        // The peers' warm-up (mobilenet_peers.py): inference 2 calls and at
        // least 0.5 s, training steps 1 call. With one call, petal's threads
        // came back from the idle seconds of the peers' turn at a low clock:
        // batch 1 measured 148 img/s in the benchmark against 215 alone.
        const bool inference = std::string(name).rfind("inference", 0) == 0;
        const double s = bench::median_seconds(petal.call, calls, inference ? 2 : 1, inference ? 0.5 : 0.0);
        r.petal = std::max(std::isfinite(r.petal) ? r.petal : 0.0, static_cast<double>(petal.images) / s);
        if (petal.plain_call) {
          const double plain = bench::median_seconds(petal.plain_call, calls, 2, 0.5);
          r.petal_plain = std::max(std::isfinite(r.petal_plain) ? r.petal_plain : 0.0,
                                   static_cast<double>(petal.images) / plain);
        }
      }
      print_cpu_row(json, name, r, batch, threads);
    }
  } catch (const petal::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    status = 1;
  }
  if (!bench::has_flag(argc, argv, "--keep-files")) fs::remove_all(dir);
  else std::fprintf(stderr, "mobilenet: files kept in %s\n", dir.c_str());
  return status;
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
  // petal first, its figures on stderr at once: a reference that runs past
  // the caller's time limit (scripts/gpu_check.sh gives the step 180 s)
  // then leaves petal's rows in the log.
  const std::map<std::string, double> petal = petal_cuda_rows(device, batches, repeats);
  for (const auto& [row, value] : petal) std::fprintf(stderr, "mobilenet: petal %s %.2f\n", row.c_str(), value);
  std::map<std::string, double> reference;
  if (!bench::has_flag(argc, argv, "--no-reference"))
    for (std::int64_t b : batches)
      for (const auto& [k, v] : torch_cuda_rows(python, script, device, b, repeats)) reference[k] = v;

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
      "usage: mobilenet [--json] [--threads N] [--batch N] [--repeats N] [--rounds N] [--only ROW]\n"
      "                 [--python PY] [--peers LIST] [--no-compile] [--no-reference] [--quick]\n"
      "                 [--keep-files] [--device cpu|cuda[:N]]\n"
      "  MobileNetV2 at 192x192 in petal vs the best fast path of each peer (ONNX Runtime on\n"
      "  petal's ONNX export, PyTorch eager/optimize_for_inference/torch.compile, TensorFlow\n"
      "  tf.function), on the same weights and input, run by bench/mobilenet_peers.py.\n"
      "  Rows: inference_b64, inference_b1, frozen_step_b64, finetune_step_b64,\n"
      "  finetune_trainbn_step_b64, dense_step_b64, finetune_peak_rss.\n"
      "  ratio = petal / best peer throughput, best peer / petal memory.\n"
      "  --threads N    threads on both sides (default: petal's default)\n"
      "  --batch N      batch of the _b64 rows (default 64; --quick: 8)\n"
      "  --repeats N    timed calls per row, median (default 5, inference_b1 at least 30; --quick: 2)\n"
      "  --rounds N     alternate peers and petal N times per row, best of each (default 2; --quick: 1)\n"
      "  --only ROW     rows whose name contains ROW\n"
      "  --python PY    the peers' interpreter (default: .venv-bench/bin/python of the source tree\n"
      "                 when scripts/install_bench_venv.sh made it, else /usr/bin/python3)\n"
      "  --peers LIST   comma-separated among onnxruntime,torch,tensorflow (default: all three)\n"
      "  --no-compile   skip torch.compile (minutes of compilation on a small machine)\n"
      "  --keep-files   keep the weights, ONNX and input files written for the peers\n"
      "  --device cuda[:N]  time the GPU instead: inference_bB, finetune_step_bB, finetune_peak_device_bB\n"
      "                for each B of --batch LIST (default 64,256), --repeats N (default 10), against\n"
      "                --python PY (default python3; a PyTorch with CUDA) running bench/mobilenet_torch.py\n");
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
  return cpu_main(argc, argv);
}
