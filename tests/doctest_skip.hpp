// Skipping a test case so that doctest counts the skip and the log says why.
//
// doctest 2.4.9 (Debian 12's doctest-dev) has no run-time skip: a test case
// is skipped by the decorator doctest::skip(bool), which is evaluated when the
// test case registers (static initialisation, before main). doctest's summary
// then counts it ("N skipped"); skip_because also prints the reason and the
// place, since the console reporter names no skipped test case:
//
//   TEST_CASE("fake backend" * doctest::skip(test::skip_because(kBuiltWithCuda, "a real CUDA backend")))
//
// Never `return` early from a test case instead: it would pass without
// checking anything. The condition runs before main, so it may only use what
// is ready then: compile-time facts, the environment, the file system, and
// libpetal (a shared library, initialised before the test executable).
#pragma once

#include <cstdio>
#include <source_location>

namespace petal::test {

// True when petal was compiled with its CUDA backend (petal_dep defines
// PETAL_HAS_CUDA for every test then).
#if defined(PETAL_HAS_CUDA)
inline constexpr bool kBuiltWithCuda = true;
#else
inline constexpr bool kBuiltWithCuda = false;
#endif

// Returns `skip`, printing "FILE:LINE: skipped: reason" when it is true.
inline bool skip_because(bool skip, const char* reason,
                         std::source_location where = std::source_location::current()) {
  if (skip) std::printf("%s:%u: skipped: %s\n", where.file_name(), static_cast<unsigned>(where.line()), reason);
  return skip;
}

}  // namespace petal::test
