// The folder an nn test suite writes its files in.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace petal::test {

// The folders nn_temp_dir made, removed when the process exits (every
// test run used to leave its folders in /tmp). PETAL_KEEP_TEST_FILES=1
// keeps them, to look at what a failing test wrote.
class TempDirRegistry {
 public:
  void add(const std::filesystem::path& dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& known : dirs_)
      if (known == dir) return;
    dirs_.push_back(dir);
  }
  ~TempDirRegistry() {
    const char* keep = std::getenv("PETAL_KEEP_TEST_FILES");
    if (keep != nullptr && *keep != '\0' && std::string_view(keep) != "0") return;
    for (const auto& dir : dirs_) {
      std::error_code ignored;  // a folder already gone is fine
      std::filesystem::remove_all(dir, ignored);
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::filesystem::path> dirs_;
};

inline TempDirRegistry& temp_dir_registry() {
  static TempDirRegistry registry;
  return registry;
}

// petal_nn_<suite>_<pid> under the system temp dir, made when missing: one
// per suite and process, so suites running in parallel never share files.
inline std::filesystem::path nn_temp_dir(std::string_view suite) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("petal_nn_" + std::string(suite) + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  temp_dir_registry().add(dir);
  return dir;
}

}  // namespace petal::test
