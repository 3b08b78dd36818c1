// tfrecord_inspect FILE...: checks TFRecord files of tf.train.Examples.
//
// For each file prints "FILE: N records" and the features of its first record
// as "key: type[length]". Every CRC is verified and every record parsed.
// Exit status: 0 all files sound; 1 at the first corrupt file (one line on
// stderr: "FILE: record R at byte B: reason"); 2 usage errors or files that
// cannot be read (missing, not a regular file, out of memory).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "data/example.hpp"
#include "data/tfrecord.hpp"
#include "examples/program_main.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: tfrecord_inspect FILE...\n"
    "\n"
    "Checks TFRecord files holding tf.train.Example records: verifies both CRCs\n"
    "of every record and parses every Example. For each file prints\n"
    "  FILE: N records\n"
    "followed by the features of its first record, one per line, as\n"
    "  key: type[length]     (type: bytes_list, float_list or int64_list)\n"
    "\n"
    "Exit status: 0 when every file is sound; 1 at the first corrupt file, with\n"
    "one line on stderr 'FILE: record R at byte B: reason' (R counts from 0, B is\n"
    "the record's first byte); 2 for usage errors or files that cannot be read\n"
    "(missing, a folder, a FIFO or device, out of memory), with one line on stderr.\n"
    "\n"
    "Options:\n"
    "  -h, --help   show this help\n";

struct FileReport {
  std::int64_t records = 0;
  std::vector<std::string> first_record_features;
};

// Throws RecordError for a corrupt file, IOError for an unreadable one.
FileReport inspect(const std::string& path) {
  using namespace petal::data;
  petal::examples::require_regular_file(path, "TFRecord file");
  TFRecordReader reader(path);
  FileReport report;
  std::string payload;
  for (;;) {
    const std::int64_t index = reader.next_record_index();
    const std::uint64_t offset = reader.next_record_offset();
    if (!reader.read(payload)) break;
    Example example;
    try {
      example = decode_example(payload);
    } catch (const petal::FormatError& e) {
      // The decoder's message starts with "Example: " and ends with an offset
      // inside the payload.
      std::string what = e.what();
      if (what.rfind("Example: ", 0) == 0) what.erase(0, 9);
      throw RecordError(path, index, offset, petal::str_cat("not a valid tf.train.Example: ", what));
    }
    if (index == 0)
      for (const auto& [key, feature] : example.features)
        report.first_record_features.push_back(
            petal::str_cat(key, ": ", feature_type_name(feature.type), "[", feature.size(), "]"));
    ++report.records;
  }
  return report;
}

// tfrecord_inspect's own codes (see kUsage), not the examples' 0/1/2 of
// docs/exit_codes.md: 1 means "corrupt", so what only failed to read is 2.
int inspect_files(int argc, char** argv) {
  namespace ex = petal::examples;
  std::vector<std::string> files;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!options_done && (arg == "-h" || arg == "--help")) {
      std::cout << kUsage;
      return ex::kExitSuccess;
    }
    if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && arg.size() > 1 && arg[0] == '-') {
      throw ex::UsageError("unknown option '" + arg + "'");
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) throw ex::UsageError("no input files");
  for (const auto& file : files) {
    try {
      const FileReport report = inspect(file);
      std::cout << file << ": " << report.records << " records\n";
      for (const auto& line : report.first_record_features) std::cout << line << "\n";
      std::cout.flush();
    } catch (const petal::data::RecordError& e) {
      std::cout.flush();
      std::cerr << e.what() << std::endl;  // starts with the file's name
      return 1;
    } catch (...) {
      std::string message = ex::current_failure().message;  // "out of memory" does not say where
      if (message.find(file) == std::string::npos) message = file + ": " + message;
      ex::report_failure("tfrecord_inspect", message);
      return 2;
    }
  }
  return ex::kExitSuccess;
}

}  // namespace

int main(int argc, char** argv) {
  return petal::examples::run_program("tfrecord_inspect", [&] { return inspect_files(argc, argv); });
}
