// Runs the tfrecord_inspect tool (path in $TFRECORD_INSPECT) on good, corrupt
// and missing files and checks its output lines and exit codes.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "data/example.hpp"
#include "data/tfrecord.hpp"
#include "temp_dir.hpp"

using namespace petal::data;
using petal::data::testing::TempDir;

namespace {

struct ToolResult {
  int status = -1;
  std::string out;
  std::string err;
};

ToolResult run_tool(const std::string& args, const TempDir& dir) {
  const char* tool = std::getenv("TFRECORD_INSPECT");
  REQUIRE_MESSAGE(tool != nullptr, "TFRECORD_INSPECT is not set");
  const auto out_path = dir / "stdout.txt", err_path = dir / "stderr.txt";
  const std::string command =
      std::string("'") + tool + "' " + args + " >'" + out_path.string() + "' 2>'" + err_path.string() + "'";
  const int raw = std::system(command.c_str());
  ToolResult result;
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.out = petal::data::testing::read_bytes(out_path);
  result.err = petal::data::testing::read_bytes(err_path);
  return result;
}

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST_CASE("tfrecord_inspect") {
  TempDir dir;
  const auto good = dir / "good.tfrec";
  {
    TFRecordWriter writer(good);
    Example ex;
    ex.set_bytes("image", {"jpeg bytes"}).set_int64s("size", {192, 192}).set_floats("one_hot", {0, 1, 0});
    writer.write(encode_example(ex));
    writer.write(encode_example(Example{}));
  }

  SUBCASE("sound files: counts and first-record features, exit 0") {
    const auto empty = dir / "empty.tfrec";
    petal::data::testing::write_bytes(empty, "");
    const ToolResult r = run_tool(quoted(good) + " " + quoted(empty), dir);
    CHECK(r.status == 0);
    CHECK(r.out == good.string() + ": 2 records\n"
                   "image: bytes_list[1]\n"
                   "one_hot: float_list[3]\n"
                   "size: int64_list[2]\n" +
                       empty.string() + ": 0 records\n");
    CHECK(r.err.empty());
  }
  SUBCASE("the real flowers shard") {
    const auto shard = petal::data::testing::flowers_dir() / "flowers15-220.tfrec";
    const ToolResult r = run_tool(quoted(shard), dir);
    CHECK(r.status == 0);
    CHECK(r.out.find(": 220 records\nclass: int64_list[1]\nimage: bytes_list[1]\nlabel: bytes_list[1]\n"
                     "one_hot_class: float_list[5]\nsize: int64_list[2]\n") != std::string::npos);
  }
  SUBCASE("a corrupt file: one stderr line, exit 1, later files not read") {
    std::string bytes = petal::data::testing::read_bytes(good);
    // The second record (an empty Example, 2 bytes) takes the last 18 bytes.
    const std::size_t second_record = bytes.size() - 18;
    bytes[second_record - 6] ^= 0x01;  // the last payload byte of record 0
    const auto bad = dir / "bad.tfrec";
    petal::data::testing::write_bytes(bad, bytes);
    const ToolResult r = run_tool(quoted(good) + " " + quoted(bad) + " " + quoted(good), dir);
    CHECK(r.status == 1);
    CHECK(r.err.rfind(bad.string() + ": record 0 at byte 0: payload CRC mismatch", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.find(good.string() + ": 2 records\n") == 0);
    CHECK(r.out.find(bad.string()) == std::string::npos);

    petal::data::testing::write_bytes(bad, petal::data::testing::read_bytes(good).substr(0, second_record + 14));
    const ToolResult truncated = run_tool(quoted(bad), dir);
    CHECK(truncated.status == 1);
    CHECK(truncated.err.rfind(bad.string() + ": record 1 at byte ", 0) == 0);
  }
  SUBCASE("a payload that is not an Example: exit 1") {
    const auto bad = dir / "notexample.tfrec";
    {
      TFRecordWriter writer(bad);
      writer.write(encode_example(Example{}));
      writer.write("\x0a\x09zz");
    }
    const ToolResult r = run_tool(quoted(bad), dir);
    CHECK(r.status == 1);
    CHECK(r.err.rfind(bad.string() + ": record 1 at byte 18: not a valid tf.train.Example", 0) == 0);
  }
  SUBCASE("usage errors and unreadable files: exit 2") {
    CHECK(run_tool("", dir).status == 2);
    CHECK(run_tool("--bogus " + quoted(good), dir).status == 2);
    CHECK(run_tool(quoted(dir / "missing.tfrec"), dir).status == 2);
    CHECK(run_tool(quoted(dir.path()), dir).status == 2);
    const ToolResult help = run_tool("--help", dir);
    CHECK(help.status == 0);
    CHECK(help.out.find("Usage: tfrecord_inspect FILE...") == 0);
  }
}
