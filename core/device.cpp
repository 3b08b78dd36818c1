// Device names: "cpu", "cuda:N" (see device.hpp).
#include "core/device.hpp"

#include <charconv>

#include "core/error.hpp"

namespace petal {

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda" || text == "gpu") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    int index = 0;
    const char* first = text.data() + 5;
    const char* last = text.data() + text.size();
    const auto [end, error] = std::from_chars(first, last, index);
    if (first != last && *first != '-' && end == last && error == std::errc()) return cuda(index);
  }
  throw ValueError(str_cat("unknown device '", text, "' (expected cpu, cuda or cuda:N)"));
}

std::ostream& operator<<(std::ostream& out, const Device& d) { return out << d.str(); }

}  // namespace petal
