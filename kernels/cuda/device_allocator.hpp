// The caching allocator of one CUDA device: blocks from plain cudaMalloc
// (never managed memory), kept by size class when freed and handed out again
// without a driver call. Every op of a device runs on its one stream, so a
// freed block can be reused at once: later work on the same stream is
// ordered after the work that last used it.
#pragma once

#include <cstddef>
#include <mutex>

#include "core/allocator.hpp"

namespace petal::cuda {

class DeviceCachingAllocator final : public Allocator {
 public:
  explicit DeviceCachingAllocator(int device_index) : device_index_(device_index) {}
  // Throws DeviceError naming the bytes requested, the device, the counters
  // and the CUDA error when the device is out of memory (after giving the
  // cache back and retrying once).
  void* allocate(std::size_t nbytes) override;
  void deallocate(void* ptr, std::size_t nbytes) override;
  AllocatorStats stats() const override;
  void empty_cache() override;
  void reset_peak();

  // Bytes a request occupies: core's size classes, at least 512 bytes.
  static std::size_t block_size(std::size_t nbytes);

 private:
  void release_cached_locked();

  int device_index_;
  mutable std::mutex mutex_;
  SizeClassCache cache_;
};

// The allocator of a device (created on first use, never destroyed).
DeviceCachingAllocator& device_allocator(int device_index);

}  // namespace petal::cuda
