// A reference-counted buffer of bytes on one device.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/allocator.hpp"
#include "core/device.hpp"
#include "core/shape.hpp"

namespace petal {

class Storage {
 public:
  // Allocates nbytes from the allocator (which must outlive the storage).
  Storage(std::size_t nbytes, Device device, Allocator& allocator);
  // Wraps memory owned elsewhere; deleter (may be empty) runs on destruction.
  Storage(void* data, std::size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::function<void(void*)> deleter_;
};

// Device backends (CUDA) register their allocator and their copy routine here,
// so core stays free of any device API.
struct DeviceBackend {
  Allocator* (*allocator)(int device_index) = nullptr;
  // Copies nbytes between any two devices, at least one of them this backend's.
  void (*copy)(void* dst, Device dst_device, const void* src, Device src_device,
               std::size_t nbytes) = nullptr;
  // Number of usable devices of this type (0 when none).
  int (*device_count)() = nullptr;
  // Gathers a strided view on one of this backend's devices into contiguous
  // memory of the same device: src points at the view's first element,
  // shape/src_strides count elements of itemsize bytes. Tensor::copy_ (and so
  // contiguous() and clone()) of strided device tensors runs through it.
  void (*strided_copy)(void* dst, const void* src, const Shape& shape, const Strides& src_strides,
                       std::size_t itemsize, Device device) = nullptr;
};
void register_device_backend(DeviceType type, DeviceBackend backend);
// Throws DeviceError when no backend is registered for the type.
const DeviceBackend& device_backend(DeviceType type);
bool has_device_backend(DeviceType type);

// Allocator for a device (the caching CPU allocator for Device::cpu()).
Allocator& allocator_for(Device device);

// Copies nbytes of contiguous memory between devices.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);

}  // namespace petal
