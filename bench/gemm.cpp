// Benchmark of petal::cpu::sgemm against OpenBLAS cblas_sgemm on the same
// shapes in the same run: square matrices and the 1x1-convolution GEMMs of
// MobileNetV2 (batch 64, 192x192 input), with 1 and 2 threads.
//
// OpenBLAS is a benchmark-only dependency, loaded with dlopen so that petal
// never links it. It runs in a child process (this executable re-run with a
// hidden flag) because OPENBLAS_CORETYPE must be in the environment before
// the library loads: Debian's OpenBLAS 0.3.21 does not recognise Zen 5 and
// would otherwise fall back to its generic kernels.
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

constexpr const char* kChildFlag = "--openblas-child";
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
      repeats_for(p, quick), 2);
  return p.gflops(s);
}

// ---- OpenBLAS side (child process) -----------------------------------------

using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
using OpenblasSetNumThreads = void (*)(int);
using OpenblasGetCorename = char* (*)();
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111;

// Prints the GFLOP/s of cblas_sgemm on one shape; exit code kChildUnavailable
// when the library cannot be loaded.
int openblas_child(int argc, char** argv) {
  const std::int64_t m = std::stoll(petal::bench::flag_value(argc, argv, "--m", "0"));
  const std::int64_t k = std::stoll(petal::bench::flag_value(argc, argv, "--k", "0"));
  const std::int64_t n = std::stoll(petal::bench::flag_value(argc, argv, "--n", "0"));
  const int threads = std::stoi(petal::bench::flag_value(argc, argv, "--threads", "1"));
  const bool quick = petal::bench::has_flag(argc, argv, "--quick");
  void* lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "gemm: cannot load libopenblas.so.0: %s\n", dlerror());
    return kChildUnavailable;
  }
  auto sgemm = reinterpret_cast<CblasSgemm>(dlsym(lib, "cblas_sgemm"));
  auto set_threads = reinterpret_cast<OpenblasSetNumThreads>(dlsym(lib, "openblas_set_num_threads"));
  if (sgemm == nullptr || set_threads == nullptr) {
    std::fprintf(stderr, "gemm: libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads\n");
    return kChildUnavailable;
  }
  set_threads(threads);
  auto corename = reinterpret_cast<OpenblasGetCorename>(dlsym(lib, "openblas_get_corename"));
  Problem p(m, k, n);
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const double s = petal::bench::median_seconds(
      [&] {
        sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, mi, ni, ki, 1.0f, p.a.data(), ki, p.b.data(), ni, 0.0f,
              p.c.data(), ni);
      },
      repeats_for(p, quick), 2);
  std::printf("%.9g %s\n", p.gflops(s), corename != nullptr ? corename() : "?");
  return 0;
}

// Runs the child; returns GFLOP/s, or a negative value when OpenBLAS is
// missing; core receives OpenBLAS's core name (openblas_get_corename).
double openblas_gflops(const GemmShape& s, int threads, bool quick, bool& missing, std::string& core) {
  std::vector<std::string> argv = {petal::bench::self_executable(), kChildFlag,
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
  std::string out;
  const int rc = petal::bench::run_child(argv, env, out);
  if (rc == kChildUnavailable) missing = true;
  if (rc != 0) return -1.0;
  const std::size_t space = out.find(' ');
  if (space != std::string::npos) core = out.substr(space + 1, out.find_first_of(" \n", space + 1) - space - 1);
  return std::atof(out.c_str());
}

void print_help() {
  std::printf(
      "usage: gemm [--quick] [--json] [--threads 1,2] [--rounds N] [--no-reference] [--only TEXT]\n"
      "            [--device cpu|cuda[:N]] [--tf32] [--repeats N]\n"
      "\n"
      "GFLOP/s of petal::cpu::sgemm (row-major, C = A @ B) on square 256..2048\n"
      "and the MobileNetV2 1x1-convolution GEMMs (batch 64, 192x192), next to\n"
      "OpenBLAS cblas_sgemm on the same shapes, measured in a child process\n"
      "(libopenblas.so.0 loaded at run time; OPENBLAS_CORETYPE=SkylakeX on\n"
      "AVX-512 CPUs, Haswell on AVX2 ones). Figures are medians of several runs\n"
      "(the best of --rounds alternating rounds per side). JSON rows name the\n"
      "peer (openblas), its variant (cblas_sgemm), peers {name: GFLOP/s} and\n"
      "OpenBLAS's core name.\n"
      "\n"
      "  --quick         three small shapes, three runs each (smoke test)\n"
      "  --json          one JSON object per line in the shared bench format\n"
      "  --threads LIST  comma-separated thread counts (default 1,2)\n"
      "  --no-reference  skip OpenBLAS (reference reported as null)\n"
      "  --only TEXT     only the shapes whose name contains TEXT (e.g. square, mnv2)\n"
      "  --rounds N      alternate petal / OpenBLAS N times per shape and keep each\n"
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
  if (petal::bench::has_flag(argc, argv, kChildFlag)) return openblas_child(argc, argv);
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

  if (!json) {
    std::printf("sgemm, row-major C = A @ B, isa %s; reference OpenBLAS cblas_sgemm, guards %s\n",
                petal::cpu::isa_name(petal::cpu::active_isa()),
                petal::bench::guards_json().c_str());
    std::printf("%-20s %7s %5s %5s %7s %12s %12s %7s\n", "name", "m", "k", "n", "threads", "petal GF/s",
                "openblas", "ratio");
  }
  bool missing = false;
  std::string core;  // OpenBLAS's core name, from the children
  const std::string only = petal::bench::flag_value(argc, argv, "--only", "");
  for (const GemmShape& s : shapes(quick)) {
    if (!only.empty() && s.name.find(only) == std::string::npos) continue;
    Problem p(s.m, s.k, s.n);
    for (int threads : thread_counts) {
      // Alternate petal and OpenBLAS rounds and keep each side's best median:
      // on a shared machine a burst of outside load then hits both alike.
      double ours = 0.0, ref = -1.0;
      for (int round = 0; round < rounds; ++round) {
        ours = std::max(ours, petal_gflops(p, threads, quick));
        if (with_reference) ref = std::max(ref, openblas_gflops(s, threads, quick, missing, core));
      }
      const bool have_ref = ref > 0.0;
      if (json) {
        petal::bench::JsonRow row;
        row.set("bench", "gemm").set("name", s.name).set("m", static_cast<long long>(s.m))
            .set("k", static_cast<long long>(s.k)).set("n", static_cast<long long>(s.n)).set("threads", threads)
            .set("batch", 1).set("device", "cpu").set("unit", "GFLOP/s").set("petal", ours);
        if (have_ref) {
          row.set("peer", "openblas").set("variant", "cblas_sgemm").set("reference", ref)
              .set("reference_name", "openblas").set("ratio", ours / ref)
              .set_raw("peers", "{\"openblas\": " + petal::nn::json::number(ref) + "}");
        } else {
          row.set_raw("peer", "null").set_raw("variant", "null").set_raw("reference", "null")
              .set("reference_name", "openblas").set_raw("ratio", "null").set_raw("peers", "{}");
        }
        row.set("openblas_core", core).set_raw("guards", petal::bench::guards_json()).set("cpu", petal::bench::cpu_model());
        std::printf("%s\n", row.str().c_str());
      } else {
        char ref_text[32] = "n/a", ratio_text[32] = "n/a";
        if (have_ref) {
          std::snprintf(ref_text, sizeof ref_text, "%.1f", ref);
          std::snprintf(ratio_text, sizeof ratio_text, "%.2f", ours / ref);
        }
        std::printf("%-20s %7lld %5lld %5lld %7d %12.1f %12s %7s\n", s.name.c_str(), static_cast<long long>(s.m),
                    static_cast<long long>(s.k), static_cast<long long>(s.n), threads, ours, ref_text, ratio_text);
      }
      std::fflush(stdout);
    }
  }
  if (missing) std::fprintf(stderr, "gemm: OpenBLAS (libopenblas.so.0) is not installed: reference is null\n");
  return 0;
}
