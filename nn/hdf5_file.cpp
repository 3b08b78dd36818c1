#include "nn/hdf5_file.hpp"

#include <hdf5.h>

#include <array>
#include <cstring>
#include <fstream>
#include <mutex>

#include "core/error.hpp"

namespace petal::nn::hdf5 {

namespace {

std::recursive_mutex& library_lock() {
  static std::recursive_mutex lock;
  return lock;
}

// Silences libhdf5's printing of its error stack (once per process); the
// stack's innermost message is folded into our exceptions instead.
void silence_library() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

herr_t take_first_message(unsigned n, const H5E_error2_t* err, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (n == 0 && err && err->desc) *text = err->desc;
  return 0;
}

// libhdf5's own reason for the last failure, as " (reason)", or "".
std::string library_reason() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, take_first_message, &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? std::string() : " (" + text + ")";
}

std::string join_path(const std::string& base, const std::string& relative) {
  if (base.empty() || base == "/") return "/" + relative;
  return base + "/" + relative;
}

// Closes any kind of identifier (file, group, dataset, attribute, type, space, list).
void close_id(hid_t id) {
  if (id < 0) return;
  switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
  }
}

// Owns a libhdf5 identifier inside one function.
class Id {
 public:
  explicit Id(hid_t id = -1) : id_(id) {}
  ~Id() { close_id(id_); }
  Id(Id&& other) noexcept : id_(other.id_) { other.id_ = -1; }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
};

// The extent of a simple dataspace, checked: rank <= kMaxDatasetRank, no
// negative or unlimited sizes.
Shape extent_of(hid_t space, const std::string& what) {
  PETAL_CHECK(H5Sget_simple_extent_type(space) != H5S_NO_CLASS, FormatError, what, ": has no dataspace",
              library_reason());
  if (H5Sget_simple_extent_type(space) == H5S_SCALAR) return {};
  if (H5Sget_simple_extent_type(space) == H5S_NULL) return {0};
  const int rank = H5Sget_simple_extent_ndims(space);
  PETAL_CHECK(rank >= 0 && rank <= kMaxDatasetRank, FormatError, what, ": rank ", rank, " is not between 0 and ",
              kMaxDatasetRank, library_reason());
  std::array<hsize_t, kMaxDatasetRank> dims{};
  PETAL_CHECK(H5Sget_simple_extent_dims(space, dims.data(), nullptr) == rank, FormatError, what,
              ": cannot read its dimensions", library_reason());
  Shape shape;
  for (int i = 0; i < rank; ++i) {
    PETAL_CHECK(dims[i] < (hsize_t{1} << 40), FormatError, what, ": dimension ", i, " = ", dims[i], " is not plausible");
    shape.push_back(static_cast<std::int64_t>(dims[i]));
  }
  return shape;
}

std::int64_t checked_numel(const Shape& shape, const std::string& what) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    PETAL_CHECK(d == 0 || n <= (std::int64_t{1} << 40) / d, FormatError, what, ": ", shape_str(shape),
                " holds too many elements");
    n *= d;
  }
  return n;
}

std::string describe(const Object& o) { return str_cat(o.file().string(), ": ", o.path()); }

}  // namespace

bool library_available() { return true; }

// ---- Object ----

Object::Object(std::int64_t id, std::filesystem::path file, std::string path)
    : id_(id), file_(std::move(file)), path_(std::move(path)) {}

Object::~Object() {
  std::lock_guard lock(library_lock());
  close_id(id_);
}

Object::Object(Object&& other) noexcept
    : id_(other.id_), file_(std::move(other.file_)), path_(std::move(other.path_)) {
  other.id_ = -1;
}

Object& Object::operator=(Object&& other) noexcept {
  if (this != &other) {
    {
      std::lock_guard lock(library_lock());
      close_id(id_);
    }
    id_ = other.id_;
    file_ = std::move(other.file_);
    path_ = std::move(other.path_);
    other.id_ = -1;
  }
  return *this;
}

// ---- File ----

File File::open(const std::filesystem::path& path) {
  std::lock_guard lock(library_lock());
  silence_library();
  std::error_code ec;
  PETAL_CHECK(std::filesystem::is_regular_file(path, ec), IOError, path.string(), ": not a regular file");
  PETAL_CHECK(has_hdf5_signature(path), FormatError, path.string(), ": not an HDF5 file (no HDF5 signature)");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  PETAL_CHECK(id >= 0, FormatError, path.string(), ": libhdf5 cannot open it", library_reason());
  return File(Object(id, path, "/"), path);
}

File File::create_in_memory(const std::filesystem::path& name) {
  std::lock_guard lock(library_lock());
  silence_library();
  Id access(H5Pcreate(H5P_FILE_ACCESS));
  PETAL_CHECK(access.ok() && H5Pset_fapl_core(access.get(), std::size_t{1} << 20, 0) >= 0, IOError, name.string(),
              ": cannot set up an in-memory HDF5 file", library_reason());
  const hid_t id = H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get());
  PETAL_CHECK(id >= 0, IOError, name.string(), ": cannot create an in-memory HDF5 file", library_reason());
  return File(Object(id, name, "/"), name);
}

std::vector<char> File::image() const {
  std::lock_guard lock(library_lock());
  PETAL_CHECK(H5Fflush(object_.id(), H5F_SCOPE_GLOBAL) >= 0, IOError, path_.string(),
              ": cannot flush the HDF5 file", library_reason());
  const ssize_t size = H5Fget_file_image(object_.id(), nullptr, 0);
  PETAL_CHECK(size > 0, IOError, path_.string(), ": cannot get the HDF5 file's image", library_reason());
  std::vector<char> bytes(static_cast<std::size_t>(size));
  PETAL_CHECK(H5Fget_file_image(object_.id(), bytes.data(), bytes.size()) == size, IOError, path_.string(),
              ": cannot copy the HDF5 file's image", library_reason());
  return bytes;
}

Group File::root() const {
  std::lock_guard lock(library_lock());
  const hid_t id = H5Gopen2(object_.id(), "/", H5P_DEFAULT);
  PETAL_CHECK(id >= 0, FormatError, path_.string(), ": cannot open the root group", library_reason());
  return Group(Object(id, path_, "/"));
}

// ---- Group: reading ----

bool Group::has_attribute(const std::string& name) const {
  std::lock_guard lock(library_lock());
  const htri_t r = H5Aexists(object_.id(), name.c_str());
  PETAL_CHECK(r >= 0, FormatError, describe(object_), ": cannot look up attribute \"", name, "\"", library_reason());
  return r > 0;
}

std::vector<std::string> Group::string_list_attribute(const std::string& name) const {
  std::lock_guard lock(library_lock());
  const std::string what = str_cat(describe(object_), " attribute \"", name, "\"");
  Id attr(H5Aopen(object_.id(), name.c_str(), H5P_DEFAULT));
  PETAL_CHECK(attr.ok(), FormatError, what, ": cannot open it", library_reason());
  Id type(H5Aget_type(attr.get()));
  Id space(H5Aget_space(attr.get()));
  PETAL_CHECK(type.ok() && space.ok(), FormatError, what, ": cannot read its type", library_reason());
  const Shape shape = extent_of(space.get(), what);
  PETAL_CHECK(shape.size() <= 1, FormatError, what, ": a list of strings must have rank 0 or 1, not ", shape.size());
  const std::int64_t count = shape.empty() ? 1 : shape[0];
  if (count == 0) return {};  // h5py stores [] as an empty float64 array
  PETAL_CHECK(H5Tget_class(type.get()) == H5T_STRING, FormatError, what, ": holds ", count,
              " values that are not strings");
  PETAL_CHECK(static_cast<std::size_t>(count) <= kMaxStringListEntries, FormatError, what, ": ", count,
              " strings exceed the limit of ", kMaxStringListEntries);
  std::vector<std::string> values;
  values.reserve(static_cast<std::size_t>(count));
  const htri_t variable = H5Tis_variable_str(type.get());
  PETAL_CHECK(variable >= 0, FormatError, what, ": cannot read its string type", library_reason());
  if (variable > 0) {
    Id memory_type(H5Tcopy(H5T_C_S1));
    H5Tset_size(memory_type.get(), H5T_VARIABLE);
    std::vector<char*> pointers(static_cast<std::size_t>(count), nullptr);
    const bool read = H5Aread(attr.get(), memory_type.get(), pointers.data()) >= 0;
    const std::string reason = read ? std::string() : library_reason();
    std::string problem;
    for (char* p : pointers) {
      if (!p) continue;
      const std::size_t length = ::strnlen(p, kMaxStringBytes + 1);
      if (length > kMaxStringBytes) problem = str_cat("a string longer than ", kMaxStringBytes, " bytes");
      values.emplace_back(p, std::min(length, kMaxStringBytes));
    }
    H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, pointers.data());
    PETAL_CHECK(read, FormatError, what, ": cannot read it", reason);
    PETAL_CHECK(problem.empty(), FormatError, what, ": ", problem);
    PETAL_CHECK(values.size() == pointers.size(), FormatError, what, ": holds a null string");
    return values;
  }
  const std::size_t width = H5Tget_size(type.get());
  PETAL_CHECK(width > 0 && width <= kMaxStringBytes, FormatError, what, ": fixed string width ", width,
              " is not between 1 and ", kMaxStringBytes);
  PETAL_CHECK(static_cast<std::uint64_t>(count) * width <= std::uint64_t{256} << 20, FormatError, what, ": ", count,
              " strings of ", width, " bytes are too large");
  Id memory_type(H5Tcopy(H5T_C_S1));
  H5Tset_size(memory_type.get(), width);
  H5Tset_strpad(memory_type.get(), H5T_STR_NULLPAD);
  std::vector<char> buffer(static_cast<std::size_t>(count) * width);
  PETAL_CHECK(H5Aread(attr.get(), memory_type.get(), buffer.data()) >= 0, FormatError, what, ": cannot read it",
              library_reason());
  for (std::int64_t i = 0; i < count; ++i) {
    const char* p = buffer.data() + static_cast<std::size_t>(i) * width;
    values.emplace_back(p, ::strnlen(p, width));
  }
  return values;
}

std::optional<std::vector<std::string>> Group::keras_string_list(const std::string& name) const {
  if (has_attribute(name)) return string_list_attribute(name);
  if (!has_attribute(name + "0")) return std::nullopt;
  std::vector<std::string> values;
  for (std::size_t chunk = 0; has_attribute(name + std::to_string(chunk)); ++chunk) {
    PETAL_CHECK(chunk < kMaxStringListEntries, FormatError, describe(object_), ": too many chunks of attribute \"",
                name, "\"");
    for (auto& v : string_list_attribute(name + std::to_string(chunk))) values.push_back(std::move(v));
    PETAL_CHECK(values.size() <= kMaxStringListEntries, FormatError, describe(object_), " attribute \"", name,
                "\": more than ", kMaxStringListEntries, " strings");
  }
  return values;
}

bool Group::has_link(const std::string& relative) const {
  std::lock_guard lock(library_lock());
  // Each prefix must exist before the next is asked for (H5Lexists' rule).
  std::size_t begin = 0;
  while (true) {
    const std::size_t slash = relative.find('/', begin);
    const std::string prefix = relative.substr(0, slash);
    const htri_t r = H5Lexists(object_.id(), prefix.c_str(), H5P_DEFAULT);
    if (r <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    begin = slash + 1;
  }
}

namespace {
H5O_type_t object_type(hid_t parent, const std::string& relative) {
  H5O_info_t info{};
  if (H5Oget_info_by_name(parent, relative.c_str(), &info, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5O_TYPE_UNKNOWN;
  }
  return info.type;
}
}  // namespace

bool Group::has_group(const std::string& relative) const {
  std::lock_guard lock(library_lock());
  return has_link(relative) && object_type(object_.id(), relative) == H5O_TYPE_GROUP;
}

bool Group::has_dataset(const std::string& relative) const {
  std::lock_guard lock(library_lock());
  return has_link(relative) && object_type(object_.id(), relative) == H5O_TYPE_DATASET;
}

Group Group::group(const std::string& relative) const {
  std::lock_guard lock(library_lock());
  const std::string path = join_path(object_.path(), relative);
  PETAL_CHECK(has_group(relative), FormatError, object_.file().string(), ": has no group ", path);
  const hid_t id = H5Gopen2(object_.id(), relative.c_str(), H5P_DEFAULT);
  PETAL_CHECK(id >= 0, FormatError, object_.file().string(), ": cannot open group ", path, library_reason());
  return Group(Object(id, object_.file(), path));
}

std::vector<std::string> Group::members() const {
  std::lock_guard lock(library_lock());
  H5G_info_t info{};
  PETAL_CHECK(H5Gget_info(object_.id(), &info) >= 0, FormatError, describe(object_), ": cannot list its members",
              library_reason());
  PETAL_CHECK(info.nlinks <= kMaxGroupMembers, FormatError, describe(object_), ": ", info.nlinks,
              " members exceed the limit of ", kMaxGroupMembers);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t length =
        H5Lget_name_by_idx(object_.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    PETAL_CHECK(length >= 0 && static_cast<std::size_t>(length) <= kMaxStringBytes, FormatError, describe(object_),
                ": cannot read the name of member ", i, library_reason());
    std::string name(static_cast<std::size_t>(length) + 1, '\0');
    PETAL_CHECK(H5Lget_name_by_idx(object_.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                                   H5P_DEFAULT) == length,
                FormatError, describe(object_), ": cannot read the name of member ", i, library_reason());
    name.resize(static_cast<std::size_t>(length));
    names.push_back(std::move(name));
  }
  return names;
}

// ---- Dataset ----

Dataset::Dataset(Object object) : object_(std::move(object)) {
  std::lock_guard lock(library_lock());
  const std::string what = describe(object_);
  Id type(H5Dget_type(object_.id()));
  Id space(H5Dget_space(object_.id()));
  PETAL_CHECK(type.ok() && space.ok(), FormatError, what, ": cannot read its type", library_reason());
  const H5T_class_t type_class = H5Tget_class(type.get());
  PETAL_CHECK(type_class == H5T_FLOAT, FormatError, what, ": holds ",
              type_class == H5T_INTEGER ? "integers" : "values that are not floating point",
              ", a weight must be float32 (or float64/float16)");
  const std::size_t width = H5Tget_size(type.get());
  PETAL_CHECK(width == 2 || width == 4 || width == 8, FormatError, what, ": a ", width, "-byte float is not supported");
  shape_ = extent_of(space.get(), what);
  // Callers compare the shape with the weight they fill before reading, so
  // the buffer is sized by the model, never by what the file claims.
  checked_numel(shape_, what);
}

void Dataset::read(float* out, std::int64_t count) const {
  std::lock_guard lock(library_lock());
  PETAL_CHECK(count == shape_numel(shape_), ValueError, describe(object_), ": reading ", count, " values from a ",
              shape_str(shape_), " dataset");
  if (count == 0) return;
  PETAL_CHECK(H5Dread(object_.id(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0, FormatError,
              describe(object_), ": cannot read its data", library_reason());
}

Dataset open_dataset(const Group& parent, const std::string& relative) {
  std::lock_guard lock(library_lock());
  const std::string path = join_path(parent.path(), relative);
  PETAL_CHECK(parent.has_dataset(relative), FormatError, parent.object().file().string(), ": has no dataset ", path);
  const hid_t id = H5Dopen2(parent.object().id(), relative.c_str(), H5P_DEFAULT);
  PETAL_CHECK(id >= 0, FormatError, parent.object().file().string(), ": cannot open dataset ", path, library_reason());
  return Dataset(Object(id, parent.object().file(), path));
}

// ---- Group: writing ----

namespace {
Id intermediate_groups_list() {
  Id list(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(list.get(), 1);
  return list;
}
}  // namespace

Group Group::create_group(const std::string& relative) const {
  std::lock_guard lock(library_lock());
  const std::string path = join_path(object_.path(), relative);
  Id links = intermediate_groups_list();
  const hid_t id = H5Gcreate2(object_.id(), relative.c_str(), links.get(), H5P_DEFAULT, H5P_DEFAULT);
  PETAL_CHECK(id >= 0, IOError, object_.file().string(), ": cannot create group ", path, library_reason());
  return Group(Object(id, object_.file(), path));
}

void Group::write_string_list_attribute(const std::string& name, const std::vector<std::string>& values) const {
  std::lock_guard lock(library_lock());
  if (values.empty()) return write_empty_list_attribute(name);
  // Fixed-length, null-padded: what h5py writes for numpy's "S" arrays,
  // which is how Keras 2 stores layer_names and weight_names.
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  std::vector<char> buffer(values.size() * width, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(buffer.data() + i * width, values[i].data(), values[i].size());
  Id type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), width);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  const hsize_t dims[1] = {values.size()};
  Id space(H5Screate_simple(1, dims, nullptr));
  Id attr(H5Acreate2(object_.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  PETAL_CHECK(attr.ok() && H5Awrite(attr.get(), type.get(), buffer.data()) >= 0, IOError, describe(object_),
              ": cannot write attribute \"", name, "\"", library_reason());
}

void Group::write_string_attribute(const std::string& name, const std::string& value) const {
  std::lock_guard lock(library_lock());
  Id type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  Id space(H5Screate(H5S_SCALAR));
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  Id attr(H5Acreate2(object_.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  PETAL_CHECK(attr.ok() && H5Awrite(attr.get(), type.get(), padded.data()) >= 0, IOError, describe(object_),
              ": cannot write attribute \"", name, "\"", library_reason());
}

void Group::write_empty_list_attribute(const std::string& name) const {
  std::lock_guard lock(library_lock());
  const hsize_t dims[1] = {0};
  Id space(H5Screate_simple(1, dims, nullptr));
  Id attr(H5Acreate2(object_.id(), name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  PETAL_CHECK(attr.ok(), IOError, describe(object_), ": cannot write attribute \"", name, "\"", library_reason());
}

void Group::write_float_dataset(const std::string& relative, const Shape& shape, const float* values) const {
  std::lock_guard lock(library_lock());
  const std::string path = join_path(object_.path(), relative);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Id space(shape.empty() ? H5Screate(H5S_SCALAR)
                         : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Id links = intermediate_groups_list();
  Id dataset(H5Dcreate2(object_.id(), relative.c_str(), H5T_IEEE_F32LE, space.get(), links.get(), H5P_DEFAULT,
                        H5P_DEFAULT));
  PETAL_CHECK(dataset.ok(), IOError, object_.file().string(), ": cannot create dataset ", path, library_reason());
  if (shape_numel(shape) > 0)
    PETAL_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0, IOError,
                object_.file().string(), ": cannot write dataset ", path, library_reason());
}

}  // namespace petal::nn::hdf5
