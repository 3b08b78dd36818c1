#include "data/file_list.hpp"

#include <glob.h>

#include <algorithm>

#include "core/error.hpp"

namespace petal::data {

std::vector<std::filesystem::path> glob_files(const std::string& pattern) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::filesystem::path> files;
  if (rc == 0)
    for (std::size_t i = 0; i < matches.gl_pathc; ++i) files.emplace_back(matches.gl_pathv[i]);
  ::globfree(&matches);
  if (rc == GLOB_NOMATCH || (rc == 0 && files.empty()))
    throw IOError(str_cat("no file matches '", pattern, "'"));
  if (rc != 0) throw IOError(str_cat("cannot expand '", pattern, "' (glob error ", rc, ")"));
  std::sort(files.begin(), files.end());
  return files;
}

FileSplit split_files(std::vector<std::filesystem::path> files, std::size_t validation_files) {
  PETAL_CHECK(validation_files >= 1 && validation_files < files.size(), ValueError, "split_files: ",
              validation_files, " validation files out of ", files.size(), " leaves a side empty");
  std::sort(files.begin(), files.end());
  FileSplit split;
  split.validation.assign(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(validation_files));
  split.training.assign(files.begin() + static_cast<std::ptrdiff_t>(validation_files), files.end());
  return split;
}

}  // namespace petal::data
