// write_file_atomic: replaces whole files, never leaves a temporary behind,
// keeps the old content when writing fails, and removes the temporaries of
// dead processes (but not of live ones, nor files that only look similar).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using namespace petal;

namespace {

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "petal_atomic_XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void touch(const fs::path& path) { std::ofstream(path) << "partial"; }

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A pid that belonged to a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return child;
}

}  // namespace

TEST_CASE("write_file_atomic creates and replaces whole files, leaving no temporary") {
  ScratchDir dir;
  const fs::path target = dir.path() / "results.json";
  write_text_file_atomic(target, "{\"a\": 1}\n");
  CHECK(read_file(target) == "{\"a\": 1}\n");
  write_file_atomic(target, [](const AppendBytes& append) {
    append("{\"a\": ", 6);
    append("22}\n", 4);
  });
  CHECK(read_file(target) == "{\"a\": 22}\n");
  write_text_file_atomic(target, "");
  CHECK(read_file(target).empty());
  CHECK(names_in(dir.path()) == std::vector<std::string>{"results.json"});
  CHECK(atomic_temporary_path(target).string() == target.string() + ".tmp." + std::to_string(::getpid()));
}

TEST_CASE("a failing write keeps the old file and removes its temporary") {
  ScratchDir dir;
  const fs::path target = dir.path() / "model.safetensors";
  write_text_file_atomic(target, "old");
  CHECK_THROWS_AS(write_file_atomic(target,
                                    [](const AppendBytes& append) {
                                      append("new, but ", 9);
                                      throw ValueError("encoder failed half way");
                                    }),
                  ValueError);
  CHECK(read_file(target) == "old");
  CHECK(names_in(dir.path()) == std::vector<std::string>{"model.safetensors"});

  // Targets that cannot be written: an error naming the path, nothing left behind.
  fs::create_directory(dir.path() / "a_folder");
  try {
    write_text_file_atomic(dir.path() / "a_folder", "x");
    FAIL("no error");
  } catch (const IOError& e) {
    CHECK(std::string(e.what()).find("a_folder") != std::string::npos);
  }
  CHECK_THROWS_AS(write_text_file_atomic(dir.path() / "missing" / "x.json", "x"), IOError);
  CHECK_THROWS_AS(write_text_file_atomic(target / "under_a_file", "x"), IOError);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"a_folder", "model.safetensors"});
  CHECK(read_file(target) == "old");
}

TEST_CASE("temporaries of dead processes are removed when their target is written again") {
  ScratchDir dir;
  const fs::path target = dir.path() / "curves.svg";
  const std::string dead = std::to_string(dead_pid());
  const std::string live = std::to_string(::getppid());
  touch(dir.path() / ("curves.svg.tmp." + dead));     // a run killed while writing: removed
  touch(dir.path() / ("curves.svg.tmp." + live));     // a live writer: kept
  touch(dir.path() / ("history.csv.tmp." + dead));    // another target: left to its own writer
  touch(dir.path() / "curves.svg.tmp.12x");           // not a pid: not ours
  touch(dir.path() / ("curves.svg.tmp." + dead + ".bak"));
  touch(dir.path() / "curves.svg.tmp.0");
  write_text_file_atomic(target, "<svg/>");
  CHECK(read_file(target) == "<svg/>");
  std::vector<std::string> expected{"curves.svg",         "curves.svg.tmp.0",           "curves.svg.tmp.12x",
                                    "curves.svg.tmp." + dead + ".bak", "curves.svg.tmp." + live, "history.csv.tmp." + dead};
  std::sort(expected.begin(), expected.end());
  CHECK(names_in(dir.path()) == expected);
  CHECK(remove_stale_temporaries(dir.path() / "history.csv") == 1);
  CHECK_FALSE(fs::exists(dir.path() / ("history.csv.tmp." + dead)));
  CHECK(remove_stale_temporaries(dir.path() / "history.csv") == 0);
}

TEST_CASE("a target given without a folder is written in the working folder") {
  ScratchDir dir;
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  write_text_file_atomic("plain.txt", "here");
  fs::current_path(previous);
  CHECK(read_file(dir.path() / "plain.txt") == "here");
}
