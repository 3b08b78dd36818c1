#include "core/storage.hpp"

#include <array>
#include <cstring>

#include "core/error.hpp"

namespace petal {

Storage::Storage(std::size_t nbytes, Device device, Allocator& allocator)
    : nbytes_(nbytes), device_(device), allocator_(&allocator) {
  data_ = allocator.allocate(nbytes);
}

Storage::Storage(void* data, std::size_t nbytes, Device device, std::function<void(void*)> deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (allocator_) {
    allocator_->deallocate(data_, nbytes_);
  } else if (deleter_) {
    deleter_(data_);
  }
}

namespace {
std::array<DeviceBackend, 2>& backends() {
  static std::array<DeviceBackend, 2> table{};
  return table;
}
}  // namespace

void register_device_backend(DeviceType type, DeviceBackend backend) {
  backends()[static_cast<int>(type)] = backend;
}

bool has_device_backend(DeviceType type) {
  return type == DeviceType::CPU || backends()[static_cast<int>(type)].allocator != nullptr;
}

const DeviceBackend& device_backend(DeviceType type) {
  const DeviceBackend& b = backends()[static_cast<int>(type)];
  if (!b.allocator)
    throw DeviceError(str_cat("no backend for device type ", Device{type, 0},
                              ": petal was built without it (CUDA needs -Dcuda=enabled and nvcc)"));
  return b;
}

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  return *device_backend(device.type).allocator(device.index);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  const DeviceType other = dst_device.is_cpu() ? src_device.type : dst_device.type;
  device_backend(other).copy(dst, dst_device, src, src_device, nbytes);
}

}  // namespace petal
