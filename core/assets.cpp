#include "core/assets.hpp"

#include <cstdlib>

#include "core/error.hpp"

#ifndef PETAL_SOURCE_ASSETS_DIR
#define PETAL_SOURCE_ASSETS_DIR "assets"
#endif

namespace petal {

std::vector<std::filesystem::path> asset_search_path(const std::string& option_dir) {
  std::vector<std::filesystem::path> dirs;
  if (!option_dir.empty()) dirs.emplace_back(option_dir);
  if (const char* env = std::getenv("PETAL_ASSETS"); env && *env) dirs.emplace_back(env);
  dirs.emplace_back(PETAL_SOURCE_ASSETS_DIR);
  dirs.emplace_back("assets");
  return dirs;
}

std::filesystem::path find_asset(const std::string& relative, const std::string& option) {
  std::error_code ec;
  if (!option.empty()) {
    if (std::filesystem::exists(option, ec)) return option;
    throw IOError(str_cat("'", option, "' does not exist (given on the command line for ", relative, ")"));
  }
  std::string tried;
  for (const auto& dir : asset_search_path()) {
    const auto candidate = dir / relative;
    if (std::filesystem::exists(candidate, ec)) return candidate;
    tried += "\n  " + candidate.string();
  }
  throw IOError(str_cat("cannot find asset '", relative, "'; looked in:", tried,
                        "\nRun scripts/fetch_assets.sh, set PETAL_ASSETS, or pass the path as an option."));
}

std::filesystem::path find_first_asset(const std::vector<std::string>& candidates, const std::string& option) {
  if (!option.empty() || candidates.size() == 1) return find_asset(candidates.front(), option);
  std::error_code ec;
  std::string tried;
  for (const auto& dir : asset_search_path())
    for (const auto& relative : candidates) {
      const auto candidate = dir / relative;
      if (std::filesystem::exists(candidate, ec)) return candidate;
    }
  for (const auto& relative : candidates) tried += "\n  " + relative;
  throw IOError(str_cat("cannot find any of these assets:", tried, "\nin:", [&] {
    std::string dirs;
    for (const auto& dir : asset_search_path()) dirs += "\n  " + dir.string();
    return dirs;
  }(), "\nRun scripts/fetch_assets.sh, set PETAL_ASSETS, or pass the path as an option."));
}

}  // namespace petal
