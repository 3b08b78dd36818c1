#include "kernels/cuda/device_allocator.hpp"

#include <array>

#include "kernels/cuda/cuda_common.cuh"

namespace petal::cuda {

std::size_t DeviceCachingAllocator::block_size(std::size_t nbytes) {
  constexpr std::size_t kMinBlock = 512;
  return nbytes <= kMinBlock ? kMinBlock : allocator_size_class(nbytes);
}

void* DeviceCachingAllocator::allocate(std::size_t nbytes) {
  const std::size_t size = block_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  cache_.count_request();
  if (void* ptr = cache_.reuse(size)) return ptr;
  DeviceGuard guard(device_index_);
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, size);
  if (status == cudaErrorMemoryAllocation && cache_.stats().cached_bytes > 0) {
    cudaGetLastError();
    release_cached_locked();
    status = cudaMalloc(&ptr, size);
  }
  if (status != cudaSuccess) {
    const AllocatorStats& stats = cache_.stats();
    throw_cuda_error(str_cat("cuda:", device_index_, " allocator: cannot allocate ", nbytes, " bytes (block of ",
                             size, "; ", stats.in_use_bytes, " bytes in use, ", stats.cached_bytes, " cached, peak ",
                             stats.peak_bytes, ")"),
                     status);
  }
  cache_.count_in_use(size);
  return ptr;
}

void DeviceCachingAllocator::deallocate(void* ptr, std::size_t nbytes) {
  if (!ptr) return;
  const std::size_t size = block_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  cache_.count_freed(size);
  cache_.keep(ptr, size);
}

AllocatorStats DeviceCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cache_.stats();
}

void DeviceCachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

void DeviceCachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  cache_.reset_peak();
}

void DeviceCachingAllocator::release_cached_locked() {
  DeviceGuard guard(device_index_);
  // cudaFree waits for the device, so blocks that queued kernels still use
  // are not handed back early.
  cache_.drain([](void* p) { cudaFree(p); });
}

DeviceCachingAllocator& device_allocator(int device_index) {
  constexpr int kMaxDevices = 64;
  PETAL_CHECK(device_index >= 0 && device_index < kMaxDevices, DeviceError, "CUDA device ", device_index,
              " is out of range");
  static std::array<DeviceCachingAllocator*, kMaxDevices> table{};
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (!table[device_index]) table[device_index] = new DeviceCachingAllocator(device_index);  // never destroyed
  return *table[device_index];
}

}  // namespace petal::cuda
