// Benchmark `conv`: petal's convolution-family kernels on the MobileNetV2
// layers (batch 64, 192x192 input) against the same PyTorch ops
// (channels_last) run by bench/conv_torch.py in a child process with the
// same thread count, the CPU's guards and the interpreter of --python (else
// .venv-bench's, else Debian's python3). PyTorch's fastest variant wins each
// row (eager, or optimize_for_inference where no gradient is needed); rounds
// alternate OpenMP's wait policy (default spinning, then PASSIVE: on a busy
// shared machine spinning threads can lose by 10x), the best one counts.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_common.hpp"
#include "core/tensor.hpp"
#include "core/thread_pool.hpp"
#include "kernels/ops_conv.hpp"
#include "nn/json.hpp"

using namespace petal;

namespace {

struct Layer {
  std::string name;     // Keras layer (or block) name
  std::string kind;     // conv | depthwise | pointwise | fused
  std::string variant;  // fused blocks: depthwise | pointwise; "-" otherwise
  std::int64_t h, w, cin, cout, k, stride;
  bool relu6;
};

std::vector<Layer> mobilenet_layers() {
  return {
      {"Conv1", "conv", "-", 192, 192, 3, 32, 3, 2, false},
      {"block_1_depthwise", "depthwise", "-", 96, 96, 96, 96, 3, 2, false},
      {"block_2_depthwise", "depthwise", "-", 48, 48, 144, 144, 3, 1, false},
      {"block_4_depthwise", "depthwise", "-", 24, 24, 192, 192, 3, 1, false},
      {"block_7_depthwise", "depthwise", "-", 12, 12, 384, 384, 3, 1, false},
      {"block_13_depthwise", "depthwise", "-", 12, 12, 576, 576, 3, 2, false},
      {"block_1_expand", "pointwise", "-", 96, 96, 16, 96, 1, 1, false},
      {"block_1_project", "pointwise", "-", 48, 48, 96, 24, 1, 1, false},
      {"block_2_expand", "pointwise", "-", 48, 48, 24, 144, 1, 1, false},
      {"block_2_project", "pointwise", "-", 48, 48, 144, 24, 1, 1, false},
      {"block_4_expand", "pointwise", "-", 24, 24, 32, 192, 1, 1, false},
      {"block_4_project", "pointwise", "-", 24, 24, 192, 32, 1, 1, false},
      {"block_7_expand", "pointwise", "-", 12, 12, 64, 384, 1, 1, false},
      {"block_13_expand", "pointwise", "-", 12, 12, 96, 576, 1, 1, false},
      {"block_16_project", "pointwise", "-", 6, 6, 960, 320, 1, 1, false},
      {"Conv_1", "pointwise", "-", 6, 6, 320, 1280, 1, 1, false},
      {"block_2_depthwise+BN+ReLU6", "fused", "depthwise", 48, 48, 144, 144, 3, 1, true},
      {"block_4_depthwise+BN+ReLU6", "fused", "depthwise", 24, 24, 192, 192, 3, 1, true},
      {"block_13_depthwise+BN+ReLU6", "fused", "depthwise", 12, 12, 576, 576, 3, 2, true},
      {"block_2_expand+BN+ReLU6", "fused", "pointwise", 48, 48, 24, 144, 1, 1, true},
      {"block_2_project+BN", "fused", "pointwise", 48, 48, 144, 24, 1, 1, false},
      {"block_7_expand+BN+ReLU6", "fused", "pointwise", 12, 12, 64, 384, 1, 1, true},
  };
}

std::string spec(const Layer& l) {
  return l.name + "," + l.kind + "," + l.variant + "," + std::to_string(l.h) + "," + std::to_string(l.w) + "," +
         std::to_string(l.cin) + "," + std::to_string(l.cout) + "," + std::to_string(l.k) + "," +
         std::to_string(l.stride) + "," + (l.relu6 ? "1" : "0");
}

using bench::source_dir;

// Extracts "key": value from one JSON line (the script's flat objects only).
std::string json_field(const std::string& line, const std::string& key) {
  const std::string pattern = "\"" + key + "\": ";
  std::size_t pos = line.find(pattern);
  if (pos == std::string::npos) return "";
  pos += pattern.size();
  if (line[pos] == '"') {
    const std::size_t end = line.find('"', pos + 1);
    return line.substr(pos + 1, end - pos - 1);
  }
  const std::size_t end = line.find_first_of(",}", pos);
  return line.substr(pos, end - pos);
}

// One PyTorch figure: milliseconds and the variant that gave them.
struct Reference {
  double ms = 0.0;
  std::string variant;
};

// (name + "/" + pass) -> PyTorch's fastest variant; empty when torch is
// unavailable. passive_omp: OMP_WAIT_POLICY=PASSIVE ("/omp_passive" variants).
std::map<std::string, Reference> torch_reference(const std::vector<Layer>& layers, std::int64_t batch, int threads,
                                                 int repeats, const std::string& python, const std::string& script,
                                                 bool passive_omp) {
  std::vector<std::string> argv = {python, script, "--batch", std::to_string(batch), "--threads",
                                   std::to_string(threads), "--repeats", std::to_string(repeats)};
  for (const Layer& l : layers) argv.push_back(spec(l));
  std::string out;
  std::map<std::string, std::string> env = bench::torch_environment(threads);
  if (passive_omp) env.insert_or_assign("OMP_WAIT_POLICY", std::string("PASSIVE"));
  const int rc = bench::run_child(argv, env, out);
  std::map<std::string, Reference> result;
  if (rc != 0) {
    std::fprintf(stderr, "conv: the PyTorch reference failed (exit %d); reference reported as null\n", rc);
  }
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t end = out.find('\n', pos);
    const std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    const std::string name = json_field(line, "name"), pass = json_field(line, "pass"), ms = json_field(line, "ms");
    std::string variant = json_field(line, "variant");
    if (variant.empty()) variant = "eager";
    if (passive_omp) variant += "/omp_passive";
    if (!name.empty() && !ms.empty()) {
      const double value = std::atof(ms.c_str());
      auto it = result.find(name + "/" + pass);
      if (it == result.end() || value < it->second.ms) result[name + "/" + pass] = {value, variant};
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return result;
}

struct Timing {
  std::string pass;
  double ms;
};

// Times petal's forward and backward (and, for fused blocks, folded inference) of one layer.
std::vector<Timing> time_petal(const Layer& l, std::int64_t batch, int repeats) {
  Generator gen(1);
  const bool depthwise = l.kind == "depthwise" || l.variant == "depthwise";
  const Tensor x = uniform({batch, l.h, l.w, l.cin}, -1.0, 1.0, gen);
  const Tensor kernel = uniform(depthwise ? Shape{l.k, l.k, l.cin, 1} : Shape{l.k, l.k, l.cin, l.cout}, -0.1, 0.1, gen);
  const ops::Conv2dWindow win = ops::conv2d_window(l.h, l.w, l.k, l.k, l.stride, l.stride, ops::ConvPadding::Same, "conv");
  auto conv = [&](const Tensor& in) {
    return depthwise ? ops::depthwise_conv2d(in, kernel, Tensor(), win) : ops::conv2d(in, kernel, Tensor(), win);
  };
  auto conv_backward = [&](const Tensor& grad) {
    if (depthwise) {
      ops::depthwise_conv2d_backward_input(grad, kernel, x.shape(), win);
      ops::depthwise_conv2d_backward_kernel(grad, x, kernel.shape(), win);
    } else {
      ops::conv2d_backward_input(grad, kernel, x.shape(), win);
      ops::conv2d_backward_kernel(grad, x, kernel.shape(), win);
    }
  };
  std::vector<Timing> out;
  const Tensor y = conv(x);
  const Tensor dy = uniform(y.shape(), -1.0, 1.0, gen);
  if (l.kind != "fused") {
    out.push_back({"forward", 1e3 * bench::median_seconds([&] { conv(x); }, repeats, 1, bench::kSteadyWarmupSeconds)});
    out.push_back({"backward", 1e3 * bench::median_seconds([&] { conv_backward(dy); }, repeats, 1, bench::kSteadyWarmupSeconds)});
    return out;
  }
  const Tensor gamma = uniform({l.cout}, 0.5, 1.5, gen), beta = uniform({l.cout}, 0.0, 1.0, gen);
  const ops::FoldedBatchNorm folded = ops::fold_batch_norm(gamma, beta, zeros({l.cout}), ones({l.cout}), 1e-3);
  out.push_back({"inference", 1e3 * bench::median_seconds(
                                       [&] {
                                         if (depthwise) {
                                           ops::depthwise_bn_relu6_inference(x, kernel, Tensor(), folded, win, l.relu6);
                                         } else {
                                           ops::conv2d_bn_relu6_inference(x, kernel, Tensor(), folded, win, l.relu6);
                                         }
                                       },
                                       repeats, 1, bench::kSteadyWarmupSeconds)});
  // Training: the convolution gathers the batch statistics as it writes (ag::conv_batch_norm's path).
  auto fused_forward = [&] {
    return depthwise ? ops::depthwise_conv2d_batch_norm_training(x, kernel, win, gamma, beta, 1e-3, l.relu6)
                     : ops::conv2d_batch_norm_training(x, kernel, win, gamma, beta, 1e-3, l.relu6);
  };
  out.push_back({"forward", 1e3 * bench::median_seconds([&] { fused_forward(); }, repeats, 1, bench::kSteadyWarmupSeconds)});
  const ops::ConvBatchNormResult saved = fused_forward();
  const Tensor &mean = saved.mean, &var = saved.biased_variance;
  out.push_back({"backward", 1e3 * bench::median_seconds(
                                      [&] {
                                        const ops::BatchNormGrads g =
                                            ops::batch_norm_backward(dy, saved.conv_out, gamma, beta, mean, var, 1e-3, l.relu6);
                                        conv_backward(g.x);
                                      },
                                      repeats, 1, bench::kSteadyWarmupSeconds)});
  return out;
}

void print_help() {
  std::printf(
      "usage: conv [--quick] [--json] [--threads N] [--batch N] [--repeats N] [--rounds N] [--only TEXT]\n"
      "            [--no-reference] [--torch-script PATH]\n"
      "\n"
      "Milliseconds per call of petal's convolution-family kernels on the MobileNetV2\n"
      "layers at 192x192 (forward; backward = input and weight gradients; fused\n"
      "blocks: conv + batch norm (+ ReLU6) in training, forward and backward, and\n"
      "folded in inference), next to the same PyTorch ops (channels_last) run by\n"
      "bench/conv_torch.py in a child process with the same thread count and the\n"
      "CPU's guards; PyTorch's fastest variant counts (eager, optimize_for_inference;\n"
      "odd rounds with OMP_WAIT_POLICY=PASSIVE). Medians of several runs after a\n"
      "warm-up of at least 50 ms on both sides (the best of --rounds alternating\n"
      "rounds per side);\n"
      "ratio = PyTorch ms / petal ms (> 1: petal is faster).\n"
      "\n"
      "  --quick            batch 4, 3 runs (smoke test)\n"
      "  --json             one JSON object per line in the shared bench format\n"
      "  --threads N        threads for both sides (default: petal's pool size)\n"
      "  --batch N          batch size (default 64)\n"
      "  --repeats N        timed runs per measurement (default 5)\n"
      "  --rounds N         alternate PyTorch and petal N times per layer, keep each\n"
      "                     side's best median (default 2; 1 with --quick)\n"
      "  --only TEXT        only the layers whose name contains TEXT\n"
      "  --no-reference     skip PyTorch (reference reported as null)\n"
      "  --python PY        PyTorch's interpreter (default: .venv-bench/bin/python of\n"
      "                     the source tree when it exists, else /usr/bin/python3)\n"
      "  --torch-script P   path of conv_torch.py (default: the source tree's bench/)\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::has_flag(argc, argv, "--help") || bench::has_flag(argc, argv, "-h")) {
    print_help();
    return 0;
  }
  const bool quick = bench::has_flag(argc, argv, "--quick");
  const bool json = bench::has_flag(argc, argv, "--json");
  const int threads = std::atoi(bench::flag_value(argc, argv, "--threads", std::to_string(num_threads())).c_str());
  const std::int64_t batch = std::atoll(bench::flag_value(argc, argv, "--batch", quick ? "4" : "64").c_str());
  const int repeats = std::atoi(bench::flag_value(argc, argv, "--repeats", quick ? "3" : "5").c_str());
  const std::string only = bench::flag_value(argc, argv, "--only", "");
  const int rounds = std::atoi(bench::flag_value(argc, argv, "--rounds", quick ? "1" : "2").c_str());
  const std::string script = bench::flag_value(argc, argv, "--torch-script", source_dir() + "/bench/conv_torch.py");
  const std::string python = bench::reference_python(argc, argv);
  if (threads < 1 || batch < 1 || repeats < 1 || rounds < 1) {
    std::fprintf(stderr, "conv: --threads, --batch, --repeats and --rounds must be positive\n");
    return 2;
  }
  set_num_threads(threads);

  std::vector<Layer> layers;
  for (const Layer& l : mobilenet_layers())
    if (only.empty() || l.name.find(only) != std::string::npos) layers.push_back(l);

  // PyTorch runs one layer per child, right before petal's timing of the same
  // layer, so that drifting machine load hits both sides alike.
  const bool with_reference = !bench::has_flag(argc, argv, "--no-reference");

  if (!json) {
    std::printf("conv: batch %lld, %d thread(s), medians of %d runs; ratio = PyTorch / petal\n", (long long)batch,
                threads, repeats);
    std::printf("%-30s %-10s %-9s %10s %10s %7s\n", "layer", "kind", "pass", "petal ms", "torch ms", "ratio");
  }
  std::map<std::string, std::vector<double>> log_ratios;  // group -> log(ratio)
  for (const Layer& l : layers) {
    // Rounds alternate the two sides; each keeps its best median, which
    // discounts bursts of load from other processes on a shared machine.
    std::map<std::string, Reference> reference;
    std::vector<Timing> timings;
    for (int round = 0; round < rounds; ++round) {
      if (with_reference)
        for (const auto& [key, ref] : torch_reference({l}, batch, threads, repeats, python, script, round % 2 == 1))
          if (!reference.count(key) || ref.ms < reference[key].ms) reference[key] = ref;
      const std::vector<Timing> now = time_petal(l, batch, repeats);
      if (timings.empty()) {
        timings = now;
      } else {
        for (std::size_t i = 0; i < now.size(); ++i) timings[i].ms = std::min(timings[i].ms, now[i].ms);
      }
    }
    for (const Timing& t : timings) {
      const auto ref = reference.find(l.name + "/" + t.pass);
      const bool has_ref = ref != reference.end();
      const double ratio = has_ref ? ref->second.ms / t.ms : 0.0;
      if (has_ref) {
        const std::string group = l.kind == "fused" ? "fused " + t.pass : l.kind + " " + t.pass;
        log_ratios[group].push_back(std::log(ratio));
        if (l.kind != "fused") log_ratios["all layers " + t.pass].push_back(std::log(ratio));
      }
      if (json) {
        bench::JsonRow row;
        row.set("bench", "conv").set("name", l.name).set("kind", l.kind).set("pass", t.pass);
        row.set_raw("shape", "[" + std::to_string(batch) + "," + std::to_string(l.h) + "," + std::to_string(l.w) + "," +
                                 std::to_string(l.cin) + "," + std::to_string(l.cout) + "," + std::to_string(l.k) +
                                 "," + std::to_string(l.stride) + "]");
        row.set("unit", "ms").set("threads", threads).set("petal", t.ms);
        if (has_ref) {
          row.set("peer", "torch").set("variant", ref->second.variant).set("reference", ref->second.ms);
          row.set("ratio", ratio).set_raw("peers", "{\"torch\": " + nn::json::number(ref->second.ms) + "}");
        } else {
          row.set_raw("peer", "null").set_raw("variant", "null").set_raw("reference", "null").set_raw("ratio", "null");
          row.set_raw("peers", "{}");
        }
        row.set_raw("guards", bench::guards_json()).set("cpu", bench::cpu_model());
        std::printf("%s\n", row.str().c_str());
      } else {
        char ref_text[32] = "-", ratio_text[32] = "-";
        if (has_ref) {
          std::snprintf(ref_text, sizeof ref_text, "%.2f", ref->second.ms);
          std::snprintf(ratio_text, sizeof ratio_text, "%.2f", ratio);
        }
        std::printf("%-30s %-10s %-9s %10.2f %10s %7s\n", l.name.c_str(), l.kind.c_str(), t.pass.c_str(), t.ms, ref_text,
                    ratio_text);
      }
      std::fflush(stdout);
    }
  }
  if (!json) {
    for (const auto& [group, logs] : log_ratios) {
      double s = 0.0;
      for (double v : logs) s += v;
      std::printf("geometric mean ratio, %-24s %.2f (%zu layers)\n", group.c_str(), std::exp(s / double(logs.size())),
                  logs.size());
    }
  }
  return 0;
}
