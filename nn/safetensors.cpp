#include "nn/safetensors.hpp"

#include <cstring>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "core/atomic_file.hpp"
#include "nn/json.hpp"

namespace petal::nn {

namespace {

std::uint64_t itemsize_of(std::string_view dtype) {
  static const std::pair<std::string_view, std::uint64_t> table[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},   {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (const auto& [name, size] : table)
    if (name == dtype) return size;
  return 0;
}

std::string describe(const std::filesystem::path& path, std::string_view name) {
  return str_cat(path.string(), ": tensor \"", name, "\"");
}

}  // namespace

std::optional<DType> safetensors_dtype(std::string_view name) {
  if (name == "F32") return DType::Float32;
  if (name == "F64") return DType::Float64;
  if (name == "I64") return DType::Int64;
  if (name == "U8") return DType::UInt8;
  return std::nullopt;
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::UInt8: return "U8";
  }
  return "?";
}

SafetensorsReader::SafetensorsReader(std::filesystem::path path) : path_(std::move(path)) {
  // A directory opens as a stream whose reads fail and whose size is
  // meaningless, and a FIFO blocks: only regular files are read.
  std::error_code ec;
  const auto status = std::filesystem::status(path_, ec);
  PETAL_CHECK(status.type() != std::filesystem::file_type::not_found, IOError, "cannot open ", path_.string(),
              ": no such file");
  PETAL_CHECK(!ec, IOError, "cannot open ", path_.string(), ": ", ec.message());
  PETAL_CHECK(std::filesystem::is_regular_file(status), IOError, "cannot read ", path_.string(),
              ": not a regular file");
  const std::uint64_t file_size = std::filesystem::file_size(path_, ec);
  PETAL_CHECK(!ec, IOError, "cannot get the size of ", path_.string(), ": ", ec.message());
  std::ifstream in(path_, std::ios::binary);
  PETAL_CHECK(in.good(), IOError, "cannot open ", path_.string());
  PETAL_CHECK(file_size >= 8, FormatError, path_.string(), ": ", file_size,
              " bytes is too short for a safetensors file (8-byte header length missing)");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  PETAL_CHECK(in.gcount() == 8, IOError, path_.string(), ": cannot read the 8-byte header length at offset 0");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  PETAL_CHECK(header_len <= file_size - 8, FormatError, path_.string(), ": header length ", header_len,
              " at offset 0 exceeds the ", file_size - 8, " bytes after it");
  PETAL_CHECK(header_len <= kSafetensorsMaxHeaderBytes, FormatError, path_.string(), ": header length ",
              header_len, " at offset 0 exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  PETAL_CHECK(static_cast<std::uint64_t>(in.gcount()) == header_len, IOError, path_.string(),
              ": cannot read the ", header_len, "-byte header at offset 8 (file truncated while reading?)");
  data_start_ = 8 + header_len;
  data_size_ = file_size - data_start_;

  const std::string source = str_cat(path_.string(), " header");
  json::Value root = json::parse(header, source);
  for (const auto& [name, value] : root.as_object(source)) {
    if (name == "__metadata__") {
      for (const auto& [key, v] : value.as_object(str_cat(source, " __metadata__")))
        metadata_[std::string(key)] = v.as_string(str_cat(source, " __metadata__.", key));
      continue;
    }
    const std::string what = describe(path_, name);
    SafetensorsEntry entry;
    entry.name = name;
    const json::Value* dtype = value.find("dtype");
    const json::Value* shape = value.find("shape");
    const json::Value* offsets = value.find("data_offsets");
    PETAL_CHECK(dtype && shape && offsets, FormatError, what, ": needs dtype, shape and data_offsets");
    entry.dtype = dtype->as_string(what + " dtype");
    const std::uint64_t itemsize = itemsize_of(entry.dtype);
    PETAL_CHECK(itemsize > 0, FormatError, what, ": unknown dtype \"", entry.dtype, "\"");
    // numel * itemsize must equal the byte range; the product is checked for
    // overflow so a hostile shape cannot wrap around to a small size.
    std::uint64_t nbytes = itemsize;
    bool overflow = false;
    for (const json::Value& d : shape->as_array(what + " shape")) {
      const std::uint64_t extent = d.as_uint(what + " shape");
      entry.shape.push_back(static_cast<std::int64_t>(extent));
      overflow |= __builtin_mul_overflow(nbytes, extent, &nbytes);
    }
    PETAL_CHECK(!overflow, FormatError, what, ": shape ", shape_str(entry.shape), " overflows 64-bit byte counts");
    const auto& range = offsets->as_array(what + " data_offsets");
    PETAL_CHECK(range.size() == 2, FormatError, what, ": data_offsets must be [begin, end]");
    entry.begin = range[0].as_uint(what + " data_offsets");
    entry.end = range[1].as_uint(what + " data_offsets");
    PETAL_CHECK(entry.begin <= entry.end && entry.end <= data_size_, FormatError, what, ": data_offsets [",
                entry.begin, ", ", entry.end, "] outside the data section of ", data_size_, " bytes (file offset ",
                data_start_, ", file truncated?)");
    PETAL_CHECK(entry.end - entry.begin == nbytes, FormatError, what, ": data_offsets [", entry.begin, ", ",
                entry.end, "] hold ", entry.end - entry.begin, " bytes but ", entry.dtype, " ",
                shape_str(entry.shape), " needs ", nbytes);
    entries_.push_back(std::move(entry));
  }
}

const SafetensorsEntry* SafetensorsReader::find(std::string_view name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

Tensor SafetensorsReader::read(std::string_view name) const {
  const SafetensorsEntry* e = find(name);
  PETAL_CHECK(e != nullptr, FormatError, path_.string(), ": no tensor named \"", name, "\"");
  return read(*e);
}

Tensor SafetensorsReader::read(const SafetensorsEntry& entry) const {
  std::optional<DType> dtype = safetensors_dtype(entry.dtype);
  PETAL_CHECK(dtype.has_value(), DTypeError, describe(path_, entry.name), ": dtype ", entry.dtype,
              " is not supported (F32, F64, I64, U8 are)");
  Tensor t = Tensor::empty(entry.shape, *dtype);
  read_into(entry, t);
  return t;
}

void SafetensorsReader::read_into(const SafetensorsEntry& entry, Tensor& destination) const {
  const std::string what = describe(path_, entry.name);
  std::optional<DType> dtype = safetensors_dtype(entry.dtype);
  PETAL_CHECK(dtype.has_value() && *dtype == destination.dtype(), DTypeError, what, ": stored as ", entry.dtype,
              ", destination is ", dtype_name(destination.dtype()));
  PETAL_CHECK(destination.shape() == entry.shape, ShapeError, what, ": stored shape ", shape_str(entry.shape),
              ", destination shape ", shape_str(destination.shape()));
  PETAL_CHECK(destination.device().is_cpu() && destination.is_contiguous(), ValueError, what,
              ": read_into needs a contiguous CPU tensor");
  std::ifstream in(path_, std::ios::binary);
  PETAL_CHECK(in.good(), IOError, "cannot open ", path_.string());
  in.seekg(static_cast<std::streamoff>(data_start_ + entry.begin));
  const std::uint64_t nbytes = entry.end - entry.begin;
  in.read(static_cast<char*>(destination.raw_data()), static_cast<std::streamsize>(nbytes));
  PETAL_CHECK(in.good() && static_cast<std::uint64_t>(in.gcount()) == nbytes, FormatError, what, ": truncated at file offset ",
              data_start_ + entry.begin, " (", nbytes, " bytes expected)");
}

void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const Metadata& metadata) {
  std::vector<Tensor> contiguous;
  contiguous.reserve(tensors.size());
  std::set<std::string> seen;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ",";
      first = false;
      header += json::quote(k) + ":" + json::quote(v);
    }
    header += "}";
  }
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    PETAL_CHECK(!name.empty() && name != "__metadata__", ValueError, "write_safetensors ", path.string(),
                ": invalid tensor name \"", name, "\"");
    PETAL_CHECK(seen.insert(name).second, ValueError, "write_safetensors ", path.string(), ": duplicate tensor \"",
                name, "\"");
    tensor.check_defined("write_safetensors");
    Tensor c = (tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu())).contiguous();
    const std::uint64_t nbytes = c.nbytes();
    if (header.size() > 1) header += ",";
    header += json::quote(name) + ":{\"dtype\":\"" + safetensors_dtype_name(c.dtype()) + "\",\"shape\":[";
    for (std::size_t i = 0; i < c.shape().size(); ++i) {
      if (i) header += ',';
      header += std::to_string(c.shape()[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
    contiguous.push_back(std::move(c));
  }
  header += "}";
  // Pad with spaces so the data starts 8-byte aligned (what the reference writer does).
  while ((header.size() % 8) != 0) header += ' ';
  const std::uint64_t header_len = header.size();
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(header_len >> (8 * i));

  write_file_atomic(path, [&](const AppendBytes& append) {
    append(len_bytes, 8);
    append(header.data(), header.size());
    for (const Tensor& t : contiguous) append(t.raw_data(), t.nbytes());
  });
}

}  // namespace petal::nn
