// The exit-code contract of every example program (docs/exit_codes.md):
//   0 success; 1 bad data or failed I/O (out of memory included); 2 usage error.
// An error is exactly one line on stderr, "<program>: <what>", naming the file
// or the option. Header-only because tests/data builds tfrecord_inspect from
// its source alone, without the examples' support library.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <new>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace petal::examples {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;  // bad data, failed I/O, out of memory
inline constexpr int kExitUsage = 2;    // bad, missing or out-of-range option

// A bad, missing or out-of-range command-line option or argument.
class UsageError : public Error {
  using Error::Error;
};

struct Failure {
  bool usage = false;
  std::string message;
};

// Describes the exception in flight; call only inside a catch block.
inline Failure current_failure() {
  try {
    throw;
  } catch (const UsageError& e) {
    return {true, std::string(e.what()) + " (see --help)"};
  } catch (const std::filesystem::filesystem_error& e) {
    // libstdc++ says "filesystem error: cannot create directories: Not a directory [out/x]".
    std::string what = e.what();
    constexpr std::string_view prefix = "filesystem error: ";
    if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
    return {false, what};
  } catch (const std::bad_alloc&) {
    return {false, "out of memory"};
  } catch (const std::exception& e) {
    return {false, e.what()};
  } catch (...) {
    return {false, "unknown error"};
  }
}

// One line "<program>: <message>": line breaks inside the message are
// flattened, and a message that already starts with the program name is not
// prefixed twice.
inline void report_failure(std::string_view program, std::string message) {
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  const std::string prefix = std::string(program) + ": ";
  if (message.rfind(prefix, 0) != 0) message.insert(0, prefix);
  std::cout.flush();  // results printed so far come before the error
  std::cerr << message << std::endl;
}

// Called with the exit code after a failure was reported, before
// run_program returns it: a data-parallel run ends every process there
// (examples/distributed_run.hpp), so no process waits for a failed one.
inline std::function<void(int exit_code)>& failure_hook() {
  static std::function<void(int)> hook;
  return hook;
}

// Runs body() (returning an exit code) under the contract: whatever it
// throws becomes one stderr line and exit 1, or 2 for a UsageError. Output
// that cannot be written (a full disk behind stdout) is a failure too.
template <class Body>
int run_program(std::string_view program, Body&& body) {
  int code = kExitFailure;
  try {
    code = body();
  } catch (...) {
    const Failure failure = current_failure();
    report_failure(program, failure.message);
    const int exit_code = failure.usage ? kExitUsage : kExitFailure;
    if (failure_hook()) failure_hook()(exit_code);
    return exit_code;
  }
  std::cout.flush();
  if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
    report_failure(program, "cannot write standard output");
    return kExitFailure;
  }
  return code;
}

// Throws IOError unless `path` is a readable regular file. The file is opened
// non-blocking, so a FIFO or a device named as input cannot hang the program
// (the library readers open by path with a blocking fopen).
inline void require_regular_file(const std::filesystem::path& path, std::string_view what) {
  const std::string name = str_cat(what, " '", path.string(), "'");
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw IOError(str_cat(name, ": ", std::strerror(errno)));
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  const int saved_errno = errno;
  ::close(fd);
  if (rc != 0) throw IOError(str_cat(name, ": ", std::strerror(saved_errno)));
  if (S_ISDIR(st.st_mode)) throw IOError(str_cat(name, " is a directory, not a file"));
  if (!S_ISREG(st.st_mode))
    throw IOError(str_cat(name, " is not a regular file (", S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket",
                          ")"));
}

}  // namespace petal::examples
