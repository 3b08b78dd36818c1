// Element types of tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace petal {

enum class DType : std::uint8_t { Float32, Float64, UInt8, Int64 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::UInt8: return 1;
    case DType::Int64: return 8;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::UInt8: return "uint8";
    case DType::Int64: return "int64";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::Int64; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

inline std::ostream& operator<<(std::ostream& out, DType t) { return out << dtype_name(t); }

// Calls fn with a value of the C++ type that corresponds to t, e.g.
//   dispatch_dtype(t, [&](auto tag) { using T = decltype(tag); ... });
template <class Fn>
decltype(auto) dispatch_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    case DType::UInt8: return fn(std::uint8_t{});
    case DType::Int64: return fn(std::int64_t{});
  }
  return fn(float{});
}

}  // namespace petal
