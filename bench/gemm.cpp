// Benchmark of petal::cpu::sgemm against OpenBLAS cblas_sgemm and oneDNN's
// dnnl_sgemm on the same shapes in the same run: square matrices and the
// 1x1-convolution GEMMs of MobileNetV2 (batch 64, 192x192 input), with 1 and
// 2 threads.
//
// The peers are benchmark-only dependencies, loaded with dlopen so that petal
// never links them. Each runs in a child process (this executable re-run with
// a hidden flag): OPENBLAS_CORETYPE and OMP_NUM_THREADS must be in the
// environment before the library loads (Debian's OpenBLAS 0.3.21 does not
// recognise Zen 5 and would otherwise fall back to its generic kernels), and
// OpenBLAS's and oneDNN's thread pools never share a process with petal's.
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "bench/bench_common.hpp"
#include "bench/gemm_shapes.hpp"
#include "bench/gemm_cuda.hpp"
#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"
#include "kernels/cpu/isa.hpp"
#include "nn/json.hpp"

namespace {

constexpr const char* kChildFlag = "--peer-child";
constexpr int kChildUnavailable = 3;

using petal::bench::GemmShape;

std::vector<GemmShape> shapes(bool quick) {
  using namespace petal::bench;
  if (quick) {
    std::vector<GemmShape> small = square_gemm_shapes({256, 512});
    small.push_back(quick_mobilenet_v2_gemm_shape());
    return small;
  }
  return gemm_shapes({256, 512, 1024, 2048});
}

// A 64-byte aligned float array, like petal's tensor storage (a plain
// std::vector is only 16-byte aligned, which splits every vector store to C
// across two cache lines).
class AlignedFloats {
 public:
  explicit AlignedFloats(std::int64_t count)
      : data_(static_cast<float*>(std::aligned_alloc(64, (static_cast<std::size_t>(count) * 4 + 63) / 64 * 64))) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~AlignedFloats() { std::free(data_); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float* data() { return data_; }

 private:
  float* data_;
};

// Operands filled once (first touch outside the timed region).
struct Problem {
  std::int64_t m, k, n;
  AlignedFloats a, b, c;
  Problem(std::int64_t m_, std::int64_t k_, std::int64_t n_) : m(m_), k(k_), n(n_), a(m * k), b(k * n), c(m * n) {
    std::uint32_t state = 12345;
    auto next = [&state] {
      state = state * 1664525u + 1013904223u;
      return static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
    };
    for (std::int64_t i = 0; i < m * k; ++i) a.data()[i] = next();
    for (std::int64_t i = 0; i < k * n; ++i) b.data()[i] = next();
    std::fill(c.data(), c.data() + m * n, 0.0f);
  }
  double gflops(double seconds) const { return 2.0 * double(m) * double(k) * double(n) / seconds * 1e-9; }
};

// Enough repeats for a stable median without spending minutes on 2048^3.
int repeats_for(const Problem& p, bool quick) {
  const double flop = 2.0 * double(p.m) * double(p.k) * double(p.n);
  if (quick) return 3;
  if (flop > 4e9) return 5;
  if (flop > 5e8) return 9;
  return 21;
}

double petal_gflops(Problem& p, int threads, bool quick) {
  petal::set_num_threads(threads);
  const double s = petal::bench::median_seconds(
      [&] {
        petal::cpu::sgemm(false, false, p.m, p.n, p.k, 1.0f, p.a.data(), p.k, p.b.data(), p.n, 0.0f, p.c.data(), p.n);
      },
      repeats_for(p, quick), 2, petal::bench::kSteadyWarmupSeconds);
  return p.gflops(s);
}

// ---- The peers' side (child processes) --------------------------------------

using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
using OpenblasSetNumThreads = void (*)(int);
using OpenblasGetCorename = char* (*)();
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111;

// oneDNN's C API (dnnl.h of libdnnl-dev 2.6), declared here so that only the
// run-time library is needed: row-major, status 0 on success.
using DnnlSgemm = int (*)(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                          std::int64_t ldc);
struct DnnlVersion {
  int major, minor, patch;
  const char* hash;
  unsigned cpu_runtime, gpu_runtime;
};
using DnnlGetVersion = const DnnlVersion* (*)();

// GFLOP/s of gemm (C = A @ B on p).
template <class Gemm>
double peer_gflops_of(Problem& p, bool quick, Gemm&& gemm) {
  return p.gflops(petal::bench::median_seconds(gemm, repeats_for(p, quick), 2, petal::bench::kSteadyWarmupSeconds));
}

// The library and its symbols, or null with the reason on stderr.
void* open_peer_library(const char* name, std::initializer_list<const char*> symbols) {
  void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "gemm: cannot load %s: %s\n", name, dlerror());
    return nullptr;
  }
  for (const char* symbol : symbols)
    if (dlsym(lib, symbol) == nullptr) {
      std::fprintf(stderr, "gemm: %s lacks %s\n", name, symbol);
      return nullptr;
    }
  return lib;
}

int openblas_child(Problem& p, int threads, bool quick) {
  void* lib = open_peer_library("libopenblas.so.0", {"cblas_sgemm", "openblas_set_num_threads"});
  if (lib == nullptr) return kChildUnavailable;
  auto sgemm = reinterpret_cast<CblasSgemm>(dlsym(lib, "cblas_sgemm"));
  reinterpret_cast<OpenblasSetNumThreads>(dlsym(lib, "openblas_set_num_threads"))(threads);
  auto corename = reinterpret_cast<OpenblasGetCorename>(dlsym(lib, "openblas_get_corename"));
  const int mi = static_cast<int>(p.m), ni = static_cast<int>(p.n), ki = static_cast<int>(p.k);
  const double gflops = peer_gflops_of(p, quick, [&] {
    sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, mi, ni, ki, 1.0f, p.a.data(), ki, p.b.data(), ni, 0.0f,
          p.c.data(), ni);
  });
  std::printf("%.9g %s\n", gflops, corename != nullptr ? corename() : "?");
  return 0;
}

// oneDNN's threads come from OpenMP: OMP_NUM_THREADS, set by the parent.
int onednn_child(Problem& p, bool quick) {
  void* lib = open_peer_library("libdnnl.so.2", {"dnnl_sgemm", "dnnl_version"});
  if (lib == nullptr) return kChildUnavailable;
  auto sgemm = reinterpret_cast<DnnlSgemm>(dlsym(lib, "dnnl_sgemm"));
  const DnnlVersion* v = reinterpret_cast<DnnlGetVersion>(dlsym(lib, "dnnl_version"))();
  int status = 0;
  const double gflops = peer_gflops_of(p, quick, [&] {
    status |= sgemm('N', 'N', p.m, p.n, p.k, 1.0f, p.a.data(), p.k, p.b.data(), p.n, 0.0f, p.c.data(), p.n);
  });
  if (status != 0) {
    std::fprintf(stderr, "gemm: dnnl_sgemm failed (status %d)\n", status);
    return 1;
  }
  std::printf("%.9g oneDNN-%d.%d.%d\n", gflops, v->major, v->minor, v->patch);
  return 0;
}

// Prints the GFLOP/s of one peer on one shape; exit code kChildUnavailable
// when its library cannot be loaded.
int peer_child(int argc, char** argv) {
  const std::int64_t m = std::stoll(petal::bench::flag_value(argc, argv, "--m", "0"));
  const std::int64_t k = std::stoll(petal::bench::flag_value(argc, argv, "--k", "0"));
  const std::int64_t n = std::stoll(petal::bench::flag_value(argc, argv, "--n", "0"));
  const int threads = std::stoi(petal::bench::flag_value(argc, argv, "--threads", "1"));
  const bool quick = petal::bench::has_flag(argc, argv, "--quick");
  const std::string peer = petal::bench::flag_value(argc, argv, kChildFlag, "");
  Problem p(m, k, n);
  if (peer == "openblas") return openblas_child(p, threads, quick);
  if (peer == "onednn") return onednn_child(p, quick);
  std::fprintf(stderr, "gemm: unknown peer '%s'\n", peer.c_str());
  return 2;
}

const std::vector<std::string> kPeers = {"openblas", "onednn"};

// Runs a peer's child; returns GFLOP/s, or a negative value when it could not
// run (missing names the peer when its library is absent); info receives
// OpenBLAS's core name or oneDNN's version.
double peer_gflops(const std::string& peer, const GemmShape& s, int threads, bool quick,
                   std::map<std::string, bool>& missing, std::string& info) {
  std::vector<std::string> argv = {petal::bench::self_executable(), kChildFlag, peer,
                                   "--m",   std::to_string(s.m),
                                   "--k",   std::to_string(s.k),
                                   "--n",   std::to_string(s.n),
                                   "--threads", std::to_string(threads)};
  if (quick) argv.push_back("--quick");
  // The guards of the CPU present (OPENBLAS_CORETYPE=SkylakeX with AVX-512,
  // Haswell with AVX2 only: Debian's OpenBLAS 0.3.21 misdetects newer CPUs).
  std::map<std::string, std::string> env = petal::bench::cpu_guards();
  env.erase("ATEN_CPU_CAPABILITY");
  env["OPENBLAS_NUM_THREADS"] = std::to_string(threads);
  env["OMP_NUM_THREADS"] = std::to_string(threads);
  std::string out;
  const int rc = petal::bench::run_child(argv, env, out);
  if (rc == kChildUnavailable) missing[peer] = true;
  if (rc != 0) return -1.0;
  const std::size_t space = out.find(' ');
  if (space != std::string::npos) info = out.substr(space + 1, out.find_first_of(" \n", space + 1) - space - 1);
  return std::atof(out.c_str());
}

void print_help() {
  std::printf(
      "usage: gemm [--quick] [--json] [--threads 1,2] [--rounds N] [--no-reference] [--only TEXT]\n"
      "            [--device cpu|cuda[:N]] [--tf32] [--repeats N]\n"
      "\n"
      "GFLOP/s of petal::cpu::sgemm (row-major, C = A @ B) on square 256..2048\n"
      "and the MobileNetV2 1x1-convolution GEMMs (batch 64, 192x192), next to\n"
      "OpenBLAS cblas_sgemm and oneDNN dnnl_sgemm on the same shapes, each\n"
      "measured in a child process (libopenblas.so.0 and libdnnl.so.2 loaded at\n"
      "run time; OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs, Haswell on AVX2\n"
      "ones). Figures are medians of several runs (the best of --rounds\n"
      "alternating rounds per side). The ratio is against the best peer; JSON\n"
      "rows name it (peer, variant), give every peer's figure (peers) and the\n"
      "ratio to each (ratio_openblas, ratio_onednn), OpenBLAS's core name and\n"
      "oneDNN's version.\n"
      "\n"
      "  --quick         three small shapes, three runs each (smoke test)\n"
      "  --json          one JSON object per line in the shared bench format\n"
      "  --threads LIST  comma-separated thread counts (default 1,2)\n"
      "  --no-reference  skip the peers (reference reported as null)\n"
      "  --peers LIST    peers to run, comma-separated (default openblas,onednn)\n"
      "  --only TEXT     only the shapes whose name contains TEXT (e.g. square, mnv2)\n"
      "  --rounds N      alternate petal / the peers N times per shape and keep each\n"
      "                  side's best median (default 3, 1 with --quick)\n"
      "  --device cuda[:N]  petal's matmul on the GPU vs cublasSgemm called directly,\n"
      "                  squares 1024..4096 and the MobileNetV2 1x1 shapes (needs a\n"
      "                  CUDA build); --tf32 uses TF32 tensor cores on both sides,\n"
      "                  --repeats N timed samples per side (default 9)\n");
}

std::vector<int> parse_threads(const std::string& list) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos < list.size()) {
    const std::size_t comma = list.find(',', pos);
    const std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const int t = std::atoi(item.c_str());
    if (t < 1) {
      std::fprintf(stderr, "gemm: bad thread count '%s' in --threads\n", item.c_str());
      std::exit(2);
    }
    out.push_back(t);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (petal::bench::has_flag(argc, argv, kChildFlag)) return peer_child(argc, argv);
  if (petal::bench::has_flag(argc, argv, "--help") || petal::bench::has_flag(argc, argv, "-h")) {
    print_help();
    return 0;
  }
  const std::string device = petal::bench::flag_value(argc, argv, "--device", "cpu");
  if (device != "cpu") {
#if defined(PETAL_HAS_CUDA)
    try {
      return petal::bench::gemm_cuda_main(argc, argv);
    } catch (const petal::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());  // names the op ("gemm: ...")
      return 1;
    }
#else
    std::fprintf(stderr, "gemm: --device %s needs petal built with CUDA (meson setup -Dcuda=enabled)\n",
                 device.c_str());
    return 2;
#endif
  }
  const bool quick = petal::bench::has_flag(argc, argv, "--quick");
  const bool json = petal::bench::has_flag(argc, argv, "--json");
  const bool with_reference = !petal::bench::has_flag(argc, argv, "--no-reference");
  const int rounds =
      std::max(1, std::atoi(petal::bench::flag_value(argc, argv, "--rounds", quick ? "1" : "3").c_str()));
  const std::vector<int> thread_counts = parse_threads(petal::bench::flag_value(argc, argv, "--threads", "1,2"));

  std::vector<std::string> peers;
  if (with_reference)
    for (const std::string& peer : petal::bench::split_list(petal::bench::flag_value(argc, argv, "--peers", "openblas,onednn"))) {
      if (std::find(kPeers.begin(), kPeers.end(), peer) == kPeers.end()) {
        std::fprintf(stderr, "gemm: unknown peer '%s' in --peers (openblas, onednn)\n", peer.c_str());
        return 2;
      }
      peers.push_back(peer);
    }

  if (!json) {
    std::printf("sgemm, row-major C = A @ B, isa %s; peers OpenBLAS cblas_sgemm, oneDNN dnnl_sgemm; guards %s\n",
                petal::cpu::isa_name(petal::cpu::active_isa()), petal::bench::guards_json().c_str());
    std::printf("%-20s %7s %5s %5s %7s %11s %9s %9s %6s %6s\n", "name", "m", "k", "n", "threads", "petal GF/s",
                "openblas", "onednn", "x obl", "x dnnl");
  }
  std::map<std::string, bool> missing;
  std::map<std::string, std::string> info;  // OpenBLAS's core name, oneDNN's version (from the children)
  const std::string only = petal::bench::flag_value(argc, argv, "--only", "");
  for (const GemmShape& s : shapes(quick)) {
    if (!only.empty() && s.name.find(only) == std::string::npos) continue;
    Problem p(s.m, s.k, s.n);
    for (int threads : thread_counts) {
      // Alternate petal and peer rounds and keep each side's best median: on
      // a shared machine a burst of outside load then hits every side alike.
      double ours = 0.0;
      std::map<std::string, double> figures;
      for (const std::string& peer : peers) figures[peer] = -1.0;
      for (int round = 0; round < rounds; ++round) {
        ours = std::max(ours, petal_gflops(p, threads, quick));
        for (const std::string& peer : peers)
          figures[peer] = std::max(figures[peer], peer_gflops(peer, s, threads, quick, missing, info[peer]));
      }
      std::string best;
      for (const auto& [peer, figure] : figures)
        if (figure > 0.0 && (best.empty() || figure > figures[best])) best = peer;
      auto ratio_to = [&](const std::string& peer) {
        auto it = figures.find(peer);
        return it != figures.end() && it->second > 0.0 ? ours / it->second : -1.0;
      };
      if (json) {
        petal::bench::JsonRow row;
        row.set("bench", "gemm").set("name", s.name).set("m", static_cast<long long>(s.m))
            .set("k", static_cast<long long>(s.k)).set("n", static_cast<long long>(s.n)).set("threads", threads)
            .set("batch", 1).set("device", "cpu").set("unit", "GFLOP/s").set("petal", ours);
        std::string peers_json = "{";
        for (const auto& [peer, figure] : figures)
          if (figure > 0.0)
            peers_json += (peers_json.size() > 1 ? ", " : "") + petal::nn::json::quote(peer) + ": " +
                          petal::nn::json::number(figure);
        peers_json += "}";
        if (!best.empty()) {
          row.set("peer", best).set("variant", best == "openblas" ? "cblas_sgemm" : "dnnl_sgemm")
              .set("reference", figures[best]).set("reference_name", best).set("ratio", ours / figures[best]);
        } else {
          row.set_raw("peer", "null").set_raw("variant", "null").set_raw("reference", "null")
              .set_raw("reference_name", "null").set_raw("ratio", "null");
        }
        row.set_raw("peers", peers_json);
        for (const std::string& peer : kPeers) {
          const double r = ratio_to(peer);
          if (r > 0.0) {
            row.set("ratio_" + peer, r);
          } else {
            row.set_raw("ratio_" + peer, "null");
          }
        }
        row.set("openblas_core", info["openblas"]).set("onednn_version", info["onednn"])
            .set_raw("guards", petal::bench::guards_json()).set("cpu", petal::bench::cpu_model());
        std::printf("%s\n", row.str().c_str());
      } else {
        auto text = [](double v, const char* format) {
          char buf[32] = "n/a";
          if (v > 0.0) std::snprintf(buf, sizeof buf, format, v);
          return std::string(buf);
        };
        auto figure_of = [&](const std::string& peer) {
          auto it = figures.find(peer);
          return it == figures.end() ? -1.0 : it->second;
        };
        std::printf("%-20s %7lld %5lld %5lld %7d %11.1f %9s %9s %6s %6s\n", s.name.c_str(),
                    static_cast<long long>(s.m), static_cast<long long>(s.k), static_cast<long long>(s.n), threads,
                    ours, text(figure_of("openblas"), "%.1f").c_str(), text(figure_of("onednn"), "%.1f").c_str(),
                    text(ratio_to("openblas"), "%.2f").c_str(), text(ratio_to("onednn"), "%.2f").c_str());
      }
      std::fflush(stdout);
    }
  }
  if (missing["openblas"])
    std::fprintf(stderr, "gemm: OpenBLAS (libopenblas.so.0, Debian libopenblas0) is not installed: no figure\n");
  if (missing["onednn"])
    std::fprintf(stderr, "gemm: oneDNN (libdnnl.so.2, Debian libdnnl2) is not installed: no figure\n");
  return 0;
}
