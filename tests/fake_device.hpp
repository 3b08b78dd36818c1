// A stand-in device backend for tests that exercise device plumbing without a
// GPU: "device" memory is ordinary host memory from a counting allocator, and
// copies are memcpy. Registered as the CUDA backend for one scope, it lets
// CPU-only test runs cover Tensor::to, Module::to and the like.
#pragma once

#include <cstdlib>
#include <cstring>

#include "core/allocator.hpp"
#include "core/storage.hpp"

namespace petal::test {

class FakeDeviceAllocator final : public Allocator {
 public:
  void* allocate(std::size_t nbytes) override {
    stats_.in_use_bytes += nbytes;
    ++stats_.allocations;
    return std::aligned_alloc(kAlignment, (nbytes + kAlignment - 1) / kAlignment * kAlignment + kAlignment);
  }
  void deallocate(void* ptr, std::size_t nbytes) override {
    stats_.in_use_bytes -= nbytes;
    std::free(ptr);
  }
  AllocatorStats stats() const override { return stats_; }
  void empty_cache() override {}

 private:
  AllocatorStats stats_;
};

inline FakeDeviceAllocator& fake_allocator() {
  static FakeDeviceAllocator instance;
  return instance;
}

// What the fake backend reports and counts (tests set and read these).
struct FakeDeviceState {
  int copies = 0;        // calls of the copy routine
  int device_count = 1;  // what device_count() answers
};
inline FakeDeviceState& fake_device_state() {
  static FakeDeviceState state;
  return state;
}

inline DeviceBackend fake_backend() {
  DeviceBackend b;
  b.allocator = [](int) -> Allocator* { return &fake_allocator(); };
  b.copy = [](void* dst, Device, const void* src, Device, std::size_t nbytes) {
    ++fake_device_state().copies;
    std::memcpy(dst, src, nbytes);
  };
  b.device_count = [] { return fake_device_state().device_count; };
  return b;
}

// Puts `backend` in place of CUDA's for one scope, then restores what was
// there (the real backend in a CUDA build, nothing otherwise).
class CudaBackendScope {
 public:
  explicit CudaBackendScope(DeviceBackend backend = fake_backend()) {
    if (has_device_backend(DeviceType::CUDA)) previous_ = device_backend(DeviceType::CUDA);
    register_device_backend(DeviceType::CUDA, backend);
  }
  ~CudaBackendScope() { register_device_backend(DeviceType::CUDA, previous_); }
  CudaBackendScope(const CudaBackendScope&) = delete;
  CudaBackendScope& operator=(const CudaBackendScope&) = delete;

 private:
  DeviceBackend previous_{};
};

}  // namespace petal::test
