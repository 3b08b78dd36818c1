// Shared main for every doctest executable.
//
// meson test runs the kernel suites once per instruction set with PETAL_ISA
// forced (tests/meson.build: kernels_*_avx512, kernels_*_avx2,
// kernels_*_scalar). On a CPU that lacks the forced instruction set its
// kernels cannot run at all, so the executable exits 77, which meson reports
// as skipped, instead of failing on the first kernel call
// (kernels/cpu/isa.cpp throws there).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "kernels/cpu/isa.hpp"

namespace {

constexpr int kMesonSkipExitCode = 77;

}  // namespace

int main(int argc, char** argv) {
  if (const char* forced = std::getenv("PETAL_ISA"); forced && *forced) {
    try {
      const petal::cpu::Isa wanted = petal::cpu::parse_isa(forced);
      const petal::cpu::Isa best = petal::cpu::detected_isa();
      if (static_cast<int>(wanted) > static_cast<int>(best)) {
        std::printf("skipped: PETAL_ISA=%s, but this CPU (with the kernels this build has) supports up to %s\n",
                    forced, petal::cpu::isa_name(best));
        return kMesonSkipExitCode;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "PETAL_ISA: %s\n", e.what());
      return 2;
    }
  }
  return doctest::Context(argc, argv).run();
}
