// find_asset looks in order: the command-line option, PETAL_ASSETS, the source
// tree's assets/ (compiled in), ./assets.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "core/assets.hpp"
#include "core/error.hpp"

using namespace petal;
namespace fs = std::filesystem;

namespace {

// A fresh temporary folder, removed at the end; restores cwd and PETAL_ASSETS.
struct Sandbox {
  fs::path root;
  fs::path saved_cwd = fs::current_path();
  std::string saved_env;
  bool had_env = false;

  Sandbox() {
    std::string pattern = (fs::temp_directory_path() / "petal_assets_XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    root = pattern;
    if (const char* env = std::getenv("PETAL_ASSETS")) {
      had_env = true;
      saved_env = env;
    }
    unsetenv("PETAL_ASSETS");
  }
  ~Sandbox() {
    fs::current_path(saved_cwd);
    if (had_env) setenv("PETAL_ASSETS", saved_env.c_str(), 1);
    else unsetenv("PETAL_ASSETS");
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path touch(const fs::path& relative) const {
    const fs::path p = root / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "x";
    return p;
  }
};

// A name that cannot exist in the real source tree's assets/.
const std::string kName = "petal_test_asset_7f3a.bin";

}  // namespace

TEST_CASE("the search path is option, PETAL_ASSETS, source tree, ./assets") {
  Sandbox box;
  setenv("PETAL_ASSETS", "/from/env", 1);
  const auto dirs = asset_search_path("/from/option");
  REQUIRE(dirs.size() == 4);
  CHECK(dirs[0] == fs::path("/from/option"));
  CHECK(dirs[1] == fs::path("/from/env"));
  CHECK(dirs[2] == fs::path(PETAL_SOURCE_ASSETS_DIR));
  CHECK(dirs[3] == fs::path("assets"));
  unsetenv("PETAL_ASSETS");
  CHECK(asset_search_path().size() == 2);  // no option, no variable
  setenv("PETAL_ASSETS", "", 1);           // empty counts as unset
  CHECK(asset_search_path().size() == 2);
}

TEST_CASE("PETAL_ASSETS wins over ./assets") {
  Sandbox box;
  const fs::path env_file = box.touch("env/" + kName);
  const fs::path cwd_file = box.touch("work/assets/" + kName);
  fs::current_path(box.root / "work");
  CHECK(find_asset(kName) == fs::path("assets") / kName);
  setenv("PETAL_ASSETS", (box.root / "env").c_str(), 1);
  CHECK(find_asset(kName) == env_file);
}

TEST_CASE("an existing option is returned as given, a missing one is an IOError") {
  Sandbox box;
  const fs::path file = box.touch("explicit/" + kName);
  box.touch("env/" + kName);
  setenv("PETAL_ASSETS", (box.root / "env").c_str(), 1);
  CHECK(find_asset(kName, file.string()) == file);
  CHECK(find_asset("flowers-192", (box.root / "explicit").string()) == box.root / "explicit");
  try {
    find_asset(kName, (box.root / "missing.bin").string());
    FAIL("no IOError");
  } catch (const IOError& e) {
    CHECK(std::string(e.what()).find("missing.bin") != std::string::npos);
  }
}

TEST_CASE("a missing asset lists every place tried and how to get it") {
  Sandbox box;
  setenv("PETAL_ASSETS", (box.root / "env").c_str(), 1);
  fs::current_path(box.root);
  try {
    find_asset(kName);
    FAIL("no IOError");
  } catch (const IOError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(kName) != std::string::npos);
    CHECK(msg.find((box.root / "env" / kName).string()) != std::string::npos);
    CHECK(msg.find((fs::path(PETAL_SOURCE_ASSETS_DIR) / kName).string()) != std::string::npos);
    CHECK(msg.find("assets/" + kName) != std::string::npos);
    CHECK(msg.find("fetch_assets.sh") != std::string::npos);
  }
}

TEST_CASE("folders are found as well as files") {
  Sandbox box;
  fs::create_directories(box.root / "env" / "petal_test_dir_7f3a");
  setenv("PETAL_ASSETS", (box.root / "env").c_str(), 1);
  CHECK(find_asset("petal_test_dir_7f3a") == box.root / "env" / "petal_test_dir_7f3a");
}
