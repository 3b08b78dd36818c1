// Lists of input files: glob patterns and the lab's validation split.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace petal::data {

// Files matching a shell pattern ("dir/*.tfrec"), sorted by name. Throws
// IOError when nothing matches.
std::vector<std::filesystem::path> glob_files(const std::string& pattern);

struct FileSplit {
  std::vector<std::filesystem::path> training;
  std::vector<std::filesystem::path> validation;
};

// Sorts the files by name; the first validation_files go to validation, the
// rest to training (the lab: int(16 * 0.19) = 3 of 16 shards). Throws
// ValueError when that would leave either side empty.
FileSplit split_files(std::vector<std::filesystem::path> files, std::size_t validation_files);

}  // namespace petal::data
