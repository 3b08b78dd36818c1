// Where the tests find the shared data folder (../shared: the flowers shards,
// the MobileNetV2 weights, the numeric references): PETAL_SHARED_DIR, set by
// meson test, else ../shared beside the source tree (PETAL_SOURCE_DIR), else
// ../shared from the working directory.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace petal::test {

inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("PETAL_SHARED_DIR"); env && *env) return env;
  if (const char* src = std::getenv("PETAL_SOURCE_DIR"); src && *src) return std::filesystem::path(src) / ".." / "shared";
  return "../shared";
}

inline std::filesystem::path flowers_dir() { return shared_dir() / "data" / "flowers-192"; }

inline std::filesystem::path mobilenet_weights_path() {
  return shared_dir() / "models" / "mobilenet_v2_1.0_imagenet.safetensors";
}

}  // namespace petal::test
