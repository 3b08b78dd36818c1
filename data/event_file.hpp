// TensorFlow event files (what TensorBoard reads), written and read without
// TensorFlow: TFRecord framing (data/tfrecord.hpp, masked CRC32C) around
// serialized `Event` protos. The first record carries only wall_time and
// file_version "brain.Event:2"; every later one a wall_time, a step and a
// Summary with one scalar.
//
// Field numbers, from tensorflow/core/util/event.proto:
//   message Event { double wall_time = 1; int64 step = 2;
//                   oneof what { string file_version = 3; ...; Summary summary = 5; ... } }
// and tensorflow/core/framework/summary.proto:
//   message Summary { message Value { string tag = 1;
//                                     oneof value { float simple_value = 2; ... } }
//                     repeated Value value = 1; }
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tfrecord.hpp"

namespace petal::data {

inline constexpr const char* kEventFileVersion = "brain.Event:2";

struct ScalarSummary {
  std::string tag;
  float value = 0;
};

// The parts of an Event petal writes and reads back.
struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;            // set in a file's first event only
  std::vector<ScalarSummary> scalars;  // Summary values with a simple_value
};

std::string encode_event(const Event& event);
// Throws FormatError naming `source` on malformed wire data; fields petal does
// not know (graphs, histograms, images) are skipped.
Event decode_event(std::string_view payload, const std::string& source);
// Every event of a file, CRCs checked (RecordError on a corrupt record).
std::vector<Event> read_event_file(const std::filesystem::path& path);

// "events.out.tfevents.<seconds, 10 digits at least>.<host>", TensorFlow's name.
std::string event_file_name(std::int64_t seconds, const std::string& host);
// This machine's host name ("localhost" when unknown).
std::string host_name();
// Seconds since the epoch, as TensorFlow stamps events.
double wall_time_now();

// A new event file in `dir` (created with its parents when missing). The name
// is event_file_name(now, host); when that file exists already (two runs in
// the same second) ".1", ".2", ... is appended, so no earlier file is ever
// overwritten. Each event is flushed as it is written, so a TensorBoard that
// is running sees the points as they come. Throws IOError on any failure.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::filesystem::path& dir);
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // One Event with one scalar value.
  void add_scalar(const std::string& tag, double value, std::int64_t step);
  void write(const Event& event);
  void close() { writer_->close(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::unique_ptr<TFRecordWriter> writer_;
};

}  // namespace petal::data
