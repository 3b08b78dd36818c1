// Two builds of libpetal.so timed against each other in one process: both
// are loaded side by side (dlopen, RTLD_DEEPBIND, so each keeps its own
// kernels and thread pool) and their calls alternate, so that the phases of
// a noisy machine fall on both sides alike. On the 2-vCPU VMs this project
// runs on, one run of bench/mobilenet swings by 0.3x; this measures a 3%
// change in a kernel. The builds must agree on the signatures and structs
// called here (cpu::sgemm, cpu::inverted_residual_forward and its
// InvertedResidualBlock, set_num_threads): dlsym refuses a missing symbol,
// a changed struct it cannot see.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/conv/inverted_residual.hpp"

namespace {

using Sgemm = void (*)(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, std::int64_t,
                       const float*, std::int64_t, float, float*, std::int64_t);
using BlockForward = void (*)(const float*, float*, const petal::cpu::InvertedResidualBlock&);
using SetThreads = void (*)(int);

struct Build {
  std::string path;
  Sgemm sgemm = nullptr;
  BlockForward block = nullptr;
};

void* symbol(void* library, const char* name, const std::string& path) {
  void* s = dlsym(library, name);
  if (s == nullptr) throw std::runtime_error(path + " has no symbol " + name);
  return s;
}

Build load(const std::string& path, int threads) {
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (library == nullptr) throw std::runtime_error("cannot load " + path + ": " + dlerror());
  Build b;
  b.path = path;
  b.sgemm = reinterpret_cast<Sgemm>(symbol(library, "_ZN5petal3cpu5sgemmEbblllfPKflS2_lfPfl", path));
  b.block = reinterpret_cast<BlockForward>(
      symbol(library, "_ZN5petal3cpu25inverted_residual_forwardEPKfPfRKNS0_21InvertedResidualBlockE", path));
  reinterpret_cast<SetThreads>(symbol(library, "_ZN5petal15set_num_threadsEi", path))(threads);
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per call of a and of b, medians of `rounds` alternating rounds of
// `calls` calls each (the side that goes first alternates too).
std::pair<double, double> alternate(const std::function<void()>& a, const std::function<void()>& b, int rounds,
                                    int calls) {
  a(), b();  // warm: packing buffers, thread pools, caches
  std::vector<double> ta, tb;
  for (int r = 0; r < rounds; ++r) {
    for (int side = 0; side < 2; ++side) {
      const bool run_a = (side == 0) == (r % 2 == 0);
      const auto t0 = std::chrono::steady_clock::now();
      for (int c = 0; c < calls; ++c) run_a ? a() : b();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
      (run_a ? ta : tb).push_back(s);
    }
  }
  return {median(ta), median(tb)};
}

std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// MobileNetV2 (alpha 1.0, 192x192) blocks: input size, input channels,
// expansion, output channels, stride.
struct BlockShape {
  int size, in_c, expansion, out_c, stride;
};
const BlockShape kBlocks[] = {{96, 32, 1, 16, 1},  {96, 16, 6, 24, 2},  {48, 24, 6, 24, 1},  {48, 24, 6, 32, 2},
                              {24, 32, 6, 32, 1},  {24, 32, 6, 32, 1},  {24, 32, 6, 64, 2},  {12, 64, 6, 64, 1},
                              {12, 64, 6, 64, 1},  {12, 64, 6, 64, 1},  {12, 64, 6, 96, 1},  {12, 96, 6, 96, 1},
                              {12, 96, 6, 96, 1},  {12, 96, 6, 160, 2}, {6, 160, 6, 160, 1}, {6, 160, 6, 160, 1},
                              {6, 160, 6, 320, 1}};

void time_blocks(const Build& a, const Build& b, int batch, int rounds) {
  std::mt19937 rng(1);
  double total_a = 0, total_b = 0;
  std::printf("%-9s %-22s %10s %10s %7s\n", "block", "shape", "A ms/img", "B ms/img", "B/A");
  for (std::size_t i = 0; i < std::size(kBlocks); ++i) {
    const BlockShape& s = kBlocks[i];
    petal::cpu::InvertedResidualBlock blk;
    blk.batch = batch;
    blk.in_h = blk.in_w = s.size;
    blk.in_c = s.in_c;
    blk.expanded_c = s.in_c * s.expansion;
    blk.stride = s.stride;
    // Keras's padding: "same" at stride 1, (0, 1) at stride 2.
    blk.pad_top = blk.pad_left = s.stride == 1 ? 1 : 0;
    blk.out_h = blk.out_w = s.size / s.stride;
    blk.out_c = s.out_c;
    const std::size_t e = static_cast<std::size_t>(blk.expanded_c);
    const auto expand_kernel = random_floats(static_cast<std::size_t>(s.in_c) * e, rng, 0.2f);
    const auto expand_scale = random_floats(e, rng, 1.0f), expand_shift = random_floats(e, rng, 1.0f);
    const auto depthwise_kernel = random_floats(9 * e, rng, 0.3f), depthwise_bias = random_floats(e, rng, 1.0f);
    const auto project_kernel = random_floats(e * static_cast<std::size_t>(s.out_c), rng, 0.1f);
    const auto project_scale = random_floats(static_cast<std::size_t>(s.out_c), rng, 1.0f);
    const auto project_shift = random_floats(static_cast<std::size_t>(s.out_c), rng, 1.0f);
    if (s.expansion > 1) {
      blk.expand_kernel = expand_kernel.data();
      blk.expand_scale = expand_scale.data();
      blk.expand_shift = expand_shift.data();
    }
    blk.depthwise_kernel = depthwise_kernel.data();
    blk.depthwise_bias = depthwise_bias.data();
    blk.project_kernel = project_kernel.data();
    blk.project_scale = project_scale.data();
    blk.project_shift = project_shift.data();
    blk.residual = s.stride == 1 && s.in_c == s.out_c;
    const auto x = random_floats(static_cast<std::size_t>(batch) * s.size * s.size * s.in_c, rng, 1.0f);
    std::vector<float> ya(static_cast<std::size_t>(batch * blk.out_h * blk.out_w * blk.out_c)), yb(ya.size());
    const int calls = std::max(1, 64 / batch);
    const auto [sa, sb] = alternate([&] { a.block(x.data(), ya.data(), blk); },
                                    [&] { b.block(x.data(), yb.data(), blk); }, rounds, calls);
    double max_diff = 0;
    for (std::size_t j = 0; j < ya.size(); ++j) max_diff = std::max<double>(max_diff, std::abs(ya[j] - yb[j]));
    char shape[64];
    std::snprintf(shape, sizeof shape, "%dx%d %d>%lld>%d s%d", s.size, s.size, s.in_c,
                  static_cast<long long>(blk.expanded_c), s.out_c,
                  s.stride);
    std::printf("block_%-3zu %-22s %10.4f %10.4f %7.3f%s\n", i, shape, sa / batch * 1e3, sb / batch * 1e3, sb / sa,
                max_diff > 1e-3 ? "  (outputs differ)" : "");
    total_a += sa, total_b += sb;
  }
  std::printf("%-32s %10.4f %10.4f %7.3f  (sums of the medians)\n", "all blocks", total_a / batch * 1e3,
              total_b / batch * 1e3, total_b / total_a);
}

void time_gemm(const Build& a, const Build& b, std::int64_t m, std::int64_t k, std::int64_t n, int rounds) {
  std::mt19937 rng(2);
  // 64-byte aligned, like petal's tensors (a std::vector's 16 bytes split vector loads).
  auto aligned = [](std::size_t count) {
    return static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
  };
  const auto mk = static_cast<std::size_t>(m * k), kn = static_cast<std::size_t>(k * n);
  float *pa = aligned(mk), *pb = aligned(kn), *pc = aligned(static_cast<std::size_t>(m * n));
  const auto va = random_floats(mk, rng, 1.0f), vb = random_floats(kn, rng, 1.0f);
  std::copy(va.begin(), va.end(), pa);
  std::copy(vb.begin(), vb.end(), pb);
  const int calls = static_cast<int>(std::clamp<std::int64_t>(200'000'000 / std::max<std::int64_t>(1, m * k * n), 1, 100));
  const auto [sa, sb] = alternate([&] { a.sgemm(false, false, m, n, k, 1.0f, pa, k, pb, n, 0.0f, pc, n); },
                                  [&] { b.sgemm(false, false, m, n, k, 1.0f, pa, k, pb, n, 0.0f, pc, n); }, rounds,
                                  calls);
  const double flops = 2.0 * m * k * n;
  std::printf("sgemm %lld x %lld x %lld: A %.1f GFLOP/s, B %.1f GFLOP/s, B/A time %.3f\n", static_cast<long long>(m),
              static_cast<long long>(k), static_cast<long long>(n), flops / sa * 1e-9, flops / sb * 1e-9, sb / sa);
  std::free(pa), std::free(pb), std::free(pc);
}

[[noreturn]] void usage(int status) {
  std::fprintf(status == 0 ? stdout : stderr,
               "usage: ab_kernels A.so B.so [--threads N] [--batch N] [--rounds N] [--gemm M,K,N]\n"
               "\n"
               "Times two builds of libpetal.so against each other in one process, their\n"
               "calls alternating: MobileNetV2's 17 inverted-residual blocks\n"
               "(cpu::inverted_residual_forward, random weights, per image) or, with\n"
               "--gemm, one sgemm shape. For A/B tests of kernel changes on a noisy machine:\n"
               "copy build/libpetal.so aside, change and rebuild, then\n"
               "  build/bench/ab_kernels /tmp/before/libpetal.so build/libpetal.so\n"
               "Defaults: 2 threads, batch 64, 9 rounds. B/A below 1: B is faster.\n");
  std::exit(status);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  int threads = 2, batch = 64, rounds = 9;
  std::int64_t m = 0, k = 0, n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") usage(0);
    if (arg == "--threads") {
      threads = std::atoi(value().c_str());
    } else if (arg == "--batch") {
      batch = std::atoi(value().c_str());
    } else if (arg == "--rounds") {
      rounds = std::atoi(value().c_str());
    } else if (arg == "--gemm") {
      const std::string v = value();
      long long mm = 0, kk = 0, nn = 0;
      if (std::sscanf(v.c_str(), "%lld,%lld,%lld", &mm, &kk, &nn) != 3 || mm < 1 || kk < 1 || nn < 1) usage(2);
      m = mm, k = kk, n = nn;
    } else if (!arg.empty() && arg[0] == '-') {
      usage(2);
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.size() != 2 || threads < 1 || batch < 1 || rounds < 1) usage(2);
  try {
    const Build a = load(paths[0], threads), b = load(paths[1], threads);
    std::printf("A %s\nB %s\n%d threads, %d rounds\n", a.path.c_str(), b.path.c_str(), threads, rounds);
    if (m > 0) {
      time_gemm(a, b, m, k, n, rounds);
    } else {
      std::printf("batch %d\n", batch);
      time_blocks(a, b, batch, rounds);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ab_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
