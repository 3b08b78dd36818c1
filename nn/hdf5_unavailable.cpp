// nn/hdf5_file.hpp where petal was built without libhdf5 (-Dhdf5=disabled,
// or auto on a machine without libhdf5-dev, such as a bare GPU machine):
// opening or creating a file says so; nothing else can be reached without
// an open file.
#include "core/error.hpp"
#include "nn/hdf5_file.hpp"

namespace petal::nn::hdf5 {

namespace {
[[noreturn]] void unavailable(const std::filesystem::path& path) {
  throw IOError(str_cat(path.string(), ": Keras .h5 files need libhdf5, and this petal was built without it "
                                       "(apt-get install libhdf5-dev, then build again with -Dhdf5=enabled)"));
}
}  // namespace

Object::Object(std::int64_t id, std::filesystem::path file, std::string path)
    : id_(id), file_(std::move(file)), path_(std::move(path)) {}
Object::~Object() = default;
Object::Object(Object&& other) noexcept = default;
Object& Object::operator=(Object&& other) noexcept = default;

bool library_available() { return false; }

File File::open(const std::filesystem::path& path) { unavailable(path); }
File File::create_in_memory(const std::filesystem::path& name) { unavailable(name); }
std::vector<char> File::image() const { unavailable(path_); }
Group File::root() const { unavailable(path_); }

bool Group::has_attribute(const std::string&) const { unavailable(object_.file()); }
std::vector<std::string> Group::string_list_attribute(const std::string&) const { unavailable(object_.file()); }
std::optional<std::vector<std::string>> Group::keras_string_list(const std::string&) const {
  unavailable(object_.file());
}
bool Group::has_link(const std::string&) const { unavailable(object_.file()); }
bool Group::has_group(const std::string&) const { unavailable(object_.file()); }
bool Group::has_dataset(const std::string&) const { unavailable(object_.file()); }
Group Group::group(const std::string&) const { unavailable(object_.file()); }
std::vector<std::string> Group::members() const { unavailable(object_.file()); }
Group Group::create_group(const std::string&) const { unavailable(object_.file()); }
void Group::write_string_list_attribute(const std::string&, const std::vector<std::string>&) const {
  unavailable(object_.file());
}
void Group::write_string_attribute(const std::string&, const std::string&) const { unavailable(object_.file()); }
void Group::write_empty_list_attribute(const std::string&) const { unavailable(object_.file()); }
void Group::write_float_dataset(const std::string&, const Shape&, const float*) const { unavailable(object_.file()); }

Dataset::Dataset(Object object) : object_(std::move(object)) { unavailable(object_.file()); }
void Dataset::read(float*, std::int64_t) const { unavailable(object_.file()); }
Dataset open_dataset(const Group& parent, const std::string&) { unavailable(parent.object().file()); }

}  // namespace petal::nn::hdf5
