// The folder an nn test suite writes its files in.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace petal::test {

// petal_nn_<suite>_<pid> under the system temp dir, made when missing: one
// per suite and process, so suites running in parallel never share files.
inline std::filesystem::path nn_temp_dir(std::string_view suite) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("petal_nn_" + std::string(suite) + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace petal::test
