// A thin, checked layer over the HDF5 C library (Debian's libhdf5 1.10): just
// what Keras weight files use. Reading checks every object's type, rank and
// size before H5Aread/H5Dread, so a corrupt or hostile file gives a
// FormatError naming the file and the object, never a read into a buffer of
// the wrong size. libhdf5's own error printing is switched off: its messages
// are folded into petal's exceptions instead.
//
// Not thread-safe: Debian's serial libhdf5 is not, so every function here
// takes one process-wide lock for the duration of its libhdf5 calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/shape.hpp"

namespace petal::nn::hdf5 {

// Caps on what a file may make us allocate, beyond the file's own size.
inline constexpr std::size_t kMaxStringListEntries = 1'000'000;
inline constexpr std::size_t kMaxStringBytes = 64 * 1024;
inline constexpr int kMaxDatasetRank = 8;
inline constexpr std::size_t kMaxGroupMembers = 1'000'000;

// Whether this petal was built with libhdf5 (-Dhdf5): without it, opening
// or creating a file is an IOError that says so.
bool library_available();

// "\x89HDF\r\n\x1a\n" at offset 0 (files with a user block put it at 512,
// 1024, ...: those are recognised too).
bool has_hdf5_signature(const std::filesystem::path& path);

// An open object (file, group, dataset) that closes itself.
class Object {
 public:
  Object() = default;
  Object(std::int64_t id, std::filesystem::path file, std::string path);
  ~Object();
  Object(Object&& other) noexcept;
  Object& operator=(Object&& other) noexcept;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  std::int64_t id() const { return id_; }
  const std::filesystem::path& file() const { return file_; }
  const std::string& path() const { return path_; }  // "/Conv1/Conv1/kernel:0"
  explicit operator bool() const { return id_ >= 0; }

 private:
  std::int64_t id_ = -1;
  std::filesystem::path file_;
  std::string path_;
};

class File;

// A group (the root "/" included).
class Group {
 public:
  Group(Object object) : object_(std::move(object)) {}
  const Object& object() const { return object_; }
  const std::string& path() const { return object_.path(); }

  bool has_attribute(const std::string& name) const;
  // A string attribute: a scalar or a 1-D array of fixed- or variable-length
  // strings; an empty array of any type (h5py writes [] as float64) is an
  // empty list. Anything else is a FormatError.
  std::vector<std::string> string_list_attribute(const std::string& name) const;
  // Keras splits an attribute too large for an object header into name0,
  // name1, ...: this reads either form. nullopt when neither exists.
  std::optional<std::vector<std::string>> keras_string_list(const std::string& name) const;

  // A link below this group ("Conv1/kernel:0" may cross subgroups).
  bool has_link(const std::string& relative) const;
  bool has_group(const std::string& relative) const;
  bool has_dataset(const std::string& relative) const;
  Group group(const std::string& relative) const;
  // Member names in name order (capped by kMaxGroupMembers).
  std::vector<std::string> members() const;

  // Writing.
  Group create_group(const std::string& relative) const;
  void write_string_list_attribute(const std::string& name, const std::vector<std::string>& values) const;
  void write_string_attribute(const std::string& name, const std::string& value) const;
  // h5py's encoding of an empty Python list: a float64 array of shape (0,).
  void write_empty_list_attribute(const std::string& name) const;
  // Creates intermediate groups as needed.
  void write_float_dataset(const std::string& relative, const Shape& shape, const float* values) const;

 private:
  Object object_;
};

// A float dataset's shape, read first; read() checks the caller's buffer.
class Dataset {
 public:
  Dataset(Object object);
  const std::string& path() const { return object_.path(); }
  const Shape& shape() const { return shape_; }
  // Converts to float32 whatever float type the file stores.
  void read(float* out, std::int64_t count) const;

 private:
  Object object_;
  Shape shape_;
};

Dataset open_dataset(const Group& parent, const std::string& relative);

class File {
 public:
  // Opens for reading; a file libhdf5 cannot open is a FormatError.
  static File open(const std::filesystem::path& path);
  // A new file that lives in memory (libhdf5's core driver, no backing
  // store): written out with image(), so the caller decides how the bytes
  // reach the disk (atomically). `name` is used in messages only.
  static File create_in_memory(const std::filesystem::path& name);
  // The complete file's bytes (flushes first).
  std::vector<char> image() const;

  Group root() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  File(Object object, std::filesystem::path path) : object_(std::move(object)), path_(std::move(path)) {}
  Object object_;
  std::filesystem::path path_;
};

}  // namespace petal::nn::hdf5
