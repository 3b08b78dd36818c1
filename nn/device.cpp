#include "nn/device.hpp"

#include "core/error.hpp"
#include "core/storage.hpp"

namespace petal::nn {

void require_device(Device device, std::string_view who) {
  if (device.is_cpu()) return;
  PETAL_CHECK(has_device_backend(device.type), DeviceError, who, ": device ", device.str(),
              " is not available: petal was built without the CUDA backend (build with meson setup -Dcuda=enabled, "
              "which needs nvcc)");
  const int count = device_backend(device.type).device_count();
  PETAL_CHECK(count > 0, DeviceError, who, ": device ", device.str(),
              " is not available: petal has the CUDA backend but found no CUDA device (no GPU or no driver)");
  PETAL_CHECK(device.index >= 0 && device.index < count, DeviceError, who, ": device ", device.str(),
              " is not available: ", count, " CUDA device", count == 1 ? "" : "s", " found (cuda:0 to cuda:", count - 1,
              ")");
}

Device usable_device(const std::string& name, std::string_view who) {
  Device device;
  try {
    device = Device::parse(name);
  } catch (const ValueError& e) {
    throw ValueError(str_cat(who, ": ", e.what()));
  }
  require_device(device, who);
  return device;
}

}  // namespace petal::nn
