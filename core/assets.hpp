// Finding runtime data (flowers shards, weights, sample photos). Every program
// looks, in order: its command-line option, the PETAL_ASSETS environment
// variable, the source tree's assets/ (path compiled in), ./assets.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace petal {

// The assets folders to search, in order (command-line folder first if given).
std::vector<std::filesystem::path> asset_search_path(const std::string& option_dir = "");

// Finds `relative` (e.g. "mobilenet_v2_1.0_imagenet.safetensors" or
// "flowers-192") in the search path. An explicit option naming an existing
// file or folder wins as it is. Throws IOError listing every place tried.
std::filesystem::path find_asset(const std::string& relative, const std::string& option = "");

// The first of `candidates` found, folder by folder (a folder's first
// candidate beats its second, an earlier folder beats a later one): e.g. the
// safetensors weights, else the official Keras .h5 file.
std::filesystem::path find_first_asset(const std::vector<std::string>& candidates, const std::string& option = "");

}  // namespace petal
