// petal::Error and its subclasses. Every message names the operation and the
// offending shapes, axes, dtypes, files or offsets.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace petal {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Incompatible or invalid shapes (broadcasting, matmul, reshape, conv...).
class ShapeError : public Error { using Error::Error; };
// A dtype the operation does not support, or two dtypes that do not match.
class DTypeError : public Error { using Error::Error; };
// An axis or index outside its range.
class IndexError : public Error { using Error::Error; };
// An argument value that is out of range (negative size, bad option...).
class ValueError : public Error { using Error::Error; };
// A file that cannot be opened, read or written.
class IOError : public Error { using Error::Error; };
// Data whose content is corrupt or not in the expected format.
class FormatError : public Error { using Error::Error; };
// Tensors on a device that cannot run the operation, or a backend failure.
class DeviceError : public Error { using Error::Error; };
// Misuse of the autograd tape (backward through a freed graph, ...).
class AutogradError : public Error { using Error::Error; };

// Concatenates anything streamable into one message.
template <class... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

}  // namespace petal

// PETAL_CHECK(cond, ShapeError, "matmul: ", a, " vs ", b) throws when cond is false.
#define PETAL_CHECK(cond, ErrorType, ...)                        \
  do {                                                           \
    if (!(cond)) throw ::petal::ErrorType(::petal::str_cat(__VA_ARGS__)); \
  } while (0)
