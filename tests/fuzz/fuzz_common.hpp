// Shared pieces of the libFuzzer targets (tests/fuzz/README.md).
//
// Every target follows one contract: petal::Error (and subclasses) is an
// expected outcome of hostile input and is ignored; any other exception, a
// violated invariant (FUZZ_CHECK), a sanitizer report, a leak, a timeout or
// an allocation over the limit is a bug and stops the fuzzer with an artifact.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <typeinfo>

#include "core/error.hpp"

namespace petal::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "\n==petal-fuzz== %s:%d: %s\n", file, line, what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs fn(); returns true when it returned, false when it threw a petal::Error.
// Anything else thrown is a bug: abort with the exception's type and message.
template <class Fn>
bool expect_ok_or_error(const char* what, Fn&& fn, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  try {
    fn();
    return true;
  } catch (const petal::Error&) {
    return false;
  } catch (const std::exception& e) {
    fail(file, line, str_cat(what, " threw ", typeid(e).name(), " (not a petal::Error): ", e.what()));
  } catch (...) {
    fail(file, line, str_cat(what, " threw something that is not a std::exception"));
  }
}

// The same, for code that must not throw at all (re-reading what petal wrote).
template <class Fn>
void expect_ok(const char* what, Fn&& fn, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  try {
    fn();
  } catch (const std::exception& e) {
    fail(file, line, str_cat(what, " threw ", typeid(e).name(), ": ", e.what()));
  } catch (...) {
    fail(file, line, str_cat(what, " threw something that is not a std::exception"));
  }
}

// For code that must throw an Expected (named expected_name in the report):
// returning normally, or throwing anything else, is a bug.
template <class Expected, class Fn>
void expect_throws(const char* expected_name, const char* what, Fn&& fn, const char* file = __builtin_FILE(),
                   int line = __builtin_LINE()) {
  try {
    fn();
  } catch (const Expected&) {
    return;
  } catch (const std::exception& e) {
    fail(file, line, str_cat(what, ": expected ", expected_name, ", got ", typeid(e).name(), ": ", e.what()));
  }
  fail(file, line, str_cat(what, ": expected ", expected_name, ", nothing thrown"));
}

}  // namespace petal::fuzz

#define FUZZ_CHECK(cond, ...)                                                                                 \
  do {                                                                                                        \
    if (!(cond)) ::petal::fuzz::fail(__FILE__, __LINE__, ::petal::str_cat("invariant `" #cond "` violated: ", \
                                                                          ##__VA_ARGS__));                    \
  } while (0)

namespace petal::fuzz {

// An anonymous in-memory file (memfd) with a path that fopen/ifstream accept,
// for readers that only take a path: no disk traffic, nothing left behind.
class MemFile {
 public:
  explicit MemFile(const char* name) {
    fd_ = ::memfd_create(name, MFD_CLOEXEC);
    if (fd_ < 0) fail(__FILE__, __LINE__, str_cat("memfd_create failed: ", std::strerror(errno)));
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  const std::filesystem::path& path() const { return path_; }

  void assign(const void* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) fail(__FILE__, __LINE__, "ftruncate failed");
    const char* p = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, p + done, size - done, static_cast<off_t>(done));
      if (n <= 0) fail(__FILE__, __LINE__, str_cat("pwrite failed: ", std::strerror(errno)));
      done += static_cast<std::size_t>(n);
    }
  }
  void assign(std::string_view bytes) { assign(bytes.data(), bytes.size()); }

  std::string contents() const { return read_path(path_); }

  static std::string read_path(const std::filesystem::path& path) {
    std::string out;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail(__FILE__, __LINE__, str_cat("cannot open ", path.string()));
    char buf[1 << 14];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
  }

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

// A private folder for writers that need a real directory (atomic rename):
// under /dev/shm (tmpfs, so fsync costs nothing) when present, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("petal-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return d;
  }();
  return dir;
}

// Long exploratory runs can step around open, already reported bugs:
// PETAL_FUZZ_KNOWN_BUGS=id1,id2 makes known_bug("id1") true, and the target
// then avoids the inputs that trigger it (each id is listed in README.md).
// Unset (CI, scripts/fuzz.sh), every bug counts.
inline bool known_bug(std::string_view id) {
  const char* env = std::getenv("PETAL_FUZZ_KNOWN_BUGS");
  if (!env) return false;
  const std::string list = std::string(",") + env + ",";
  return list.find(str_cat(",", id, ",")) != std::string::npos;
}

// Bitwise equality of floats (NaN payloads included), for round trips.
inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace petal::fuzz
