#include "kernels/cpu/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

// The best instruction set this build compiled kernels for (-Dkernel_isas,
// meson.build): the others have empty tables (isa_absent.cpp).
#ifndef PETAL_KERNEL_ISA_MAX
#define PETAL_KERNEL_ISA_MAX 2
#endif

namespace petal::cpu {
namespace {

constexpr Isa kBestBuiltIsa = static_cast<Isa>(PETAL_KERNEL_ISA_MAX);

Isa probe_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Scalar;
}

Isa probe() {
  const Isa cpu = probe_cpu();
  return static_cast<int>(cpu) < static_cast<int>(kBestBuiltIsa) ? cpu : kBestBuiltIsa;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{[] {
    Isa isa = probe();
    if (const char* env = std::getenv("PETAL_ISA"); env && *env) {
      const Isa wanted = parse_isa(env);
      if (static_cast<int>(wanted) > static_cast<int>(isa))
        throw ValueError(str_cat("PETAL_ISA=", env, " but this CPU (with the kernels this build has) only ",
                                 "supports up to ", isa_name(isa)));
      isa = wanted;
    }
    return static_cast<int>(isa);
  }()};
  return slot;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

Isa parse_isa(const char* name) {
  if (std::strcmp(name, "avx512") == 0) return Isa::Avx512;
  if (std::strcmp(name, "avx2") == 0) return Isa::Avx2;
  if (std::strcmp(name, "scalar") == 0) return Isa::Scalar;
  throw ValueError(str_cat("unknown instruction set '", name, "' (expected avx512, avx2 or scalar)"));
}

Isa best_built_isa() { return kBestBuiltIsa; }

Isa detected_isa() {
  static const Isa isa = probe();
  return isa;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (int i = 0; i <= static_cast<int>(detected_isa()); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  PETAL_CHECK(static_cast<int>(isa) <= static_cast<int>(detected_isa()), ValueError,
              "set_active_isa: this CPU (with the kernels this build has) cannot run ", isa_name(isa),
              " (best: ", isa_name(detected_isa()), ")");
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace petal::cpu
