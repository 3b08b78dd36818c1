#include "data/event_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <system_error>

#include "core/error.hpp"
#include "data/protobuf_wire.hpp"

namespace petal::data {

namespace pb = protobuf;

namespace {

// Field numbers (see the header for the .proto excerpts).
constexpr std::uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersionField = 3, kEventSummary = 5;
constexpr std::uint32_t kSummaryValue = 1;
constexpr std::uint32_t kValueTag = 1, kValueSimpleValue = 2;

void decode_value(pb::WireReader& r, Event& event) {
  ScalarSummary scalar;
  bool has_value = false;
  std::uint32_t field = 0;
  int wire = 0;
  std::size_t at = 0;
  while (r.tag(field, wire)) {
    if (field == kValueTag) {
      r.expect_wire(wire, pb::kLengthDelimited, field);
      scalar.tag = std::string(r.length_delimited(at));
    } else if (field == kValueSimpleValue) {
      r.expect_wire(wire, pb::kFixed32, field);
      scalar.value = pb::float_from_bits(r.fixed32());
      has_value = true;
    } else {
      r.skip(wire);
    }
  }
  if (has_value) event.scalars.push_back(std::move(scalar));
}

}  // namespace

std::string encode_event(const Event& event) {
  std::string out;
  pb::put_double_field(out, kEventWallTime, event.wall_time);
  if (event.step != 0) pb::put_varint_field(out, kEventStep, event.step);
  if (!event.file_version.empty()) pb::put_bytes_field(out, kEventFileVersionField, event.file_version);
  if (!event.scalars.empty()) {
    std::string summary;
    for (const ScalarSummary& s : event.scalars) {
      std::string value;
      pb::put_bytes_field(value, kValueTag, s.tag);
      pb::put_float_field(value, kValueSimpleValue, s.value);
      pb::put_bytes_field(summary, kSummaryValue, value);
    }
    pb::put_bytes_field(out, kEventSummary, summary);
  }
  return out;
}

Event decode_event(std::string_view payload, const std::string& source) {
  Event event;
  pb::WireReader r(payload, 0, source, "Event");
  std::uint32_t field = 0;
  int wire = 0;
  std::size_t at = 0;
  while (r.tag(field, wire)) {
    if (field == kEventWallTime) {
      r.expect_wire(wire, pb::kFixed64, field);
      event.wall_time = pb::double_from_bits(r.fixed64());
    } else if (field == kEventStep) {
      r.expect_wire(wire, pb::kVarint, field);
      event.step = static_cast<std::int64_t>(r.varint());
    } else if (field == kEventFileVersionField) {
      r.expect_wire(wire, pb::kLengthDelimited, field);
      event.file_version = std::string(r.length_delimited(at));
    } else if (field == kEventSummary) {
      r.expect_wire(wire, pb::kLengthDelimited, field);
      const std::string_view summary = r.length_delimited(at);
      pb::WireReader s(summary, at, source, "Summary");
      while (s.tag(field, wire)) {
        if (field != kSummaryValue) {
          s.skip(wire);
          continue;
        }
        s.expect_wire(wire, pb::kLengthDelimited, field);
        std::size_t value_at = 0;
        const std::string_view value = s.length_delimited(value_at);
        pb::WireReader v(value, value_at, source, "Summary.Value");
        decode_value(v, event);
      }
    } else {
      r.skip(wire);
    }
  }
  return event;
}

std::vector<Event> read_event_file(const std::filesystem::path& path) {
  TFRecordReader reader(path);
  std::vector<Event> events;
  std::string payload;
  while (reader.read(payload)) {
    events.push_back(decode_event(payload, str_cat(path.string(), ": record ", reader.next_record_index() - 1)));
  }
  return events;
}

std::string event_file_name(std::int64_t seconds, const std::string& host) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%010lld", static_cast<long long>(seconds));
  return str_cat("events.out.tfevents.", digits, ".", host);
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

double wall_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventFileWriter::EventFileWriter(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw IOError(str_cat("cannot create the event folder '", dir.string(), "': ",
                          ec ? ec.message() : "not a directory"));
  const double now = wall_time_now();
  const std::string base = event_file_name(static_cast<std::int64_t>(now), host_name());
  for (int attempt = 0;; ++attempt) {
    std::filesystem::path candidate = dir / (attempt == 0 ? base : str_cat(base, ".", attempt));
    if (std::filesystem::exists(candidate)) continue;
    try {
      writer_ = std::make_unique<TFRecordWriter>(candidate, TFRecordWriter::Create::Exclusive);
      path_ = std::move(candidate);
      break;
    } catch (const IOError&) {
      // Another writer took the name between the check and the open: try the next.
      if (!std::filesystem::exists(candidate) || attempt > 1000) throw;
    }
  }
  Event first;
  first.wall_time = now;
  first.file_version = kEventFileVersion;
  write(first);
}

void EventFileWriter::add_scalar(const std::string& tag, double value, std::int64_t step) {
  Event event;
  event.wall_time = wall_time_now();
  event.step = step;
  event.scalars.push_back({tag, static_cast<float>(value)});
  write(event);
}

void EventFileWriter::write(const Event& event) {
  writer_->write(encode_event(event));
  writer_->flush();
}

}  // namespace petal::data
