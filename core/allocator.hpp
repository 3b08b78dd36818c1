// Host memory allocation. Freed buffers are cached by size class and reused
// instead of going back to the OS: on these virtual machines a first touch of a
// fresh page costs about 1.4 us per 4 KiB, so returning activations after
// every op can halve a network's speed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace petal {

struct AllocatorStats {
  std::size_t in_use_bytes = 0;   // handed out and not yet freed
  std::size_t cached_bytes = 0;   // freed, kept for reuse
  std::size_t peak_bytes = 0;     // highest in_use_bytes seen
  std::uint64_t allocations = 0;  // calls to allocate()
  std::uint64_t cache_hits = 0;   // allocations served from the cache
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory aligned to kAlignment, never null (throws petal::Error).
  virtual void* allocate(std::size_t nbytes) = 0;
  // nbytes must be the value passed to allocate().
  virtual void deallocate(void* ptr, std::size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  // Gives every cached buffer back to the backing memory source.
  virtual void empty_cache() = 0;
  static constexpr std::size_t kAlignment = 64;
};

// The bookkeeping every caching allocator shares (the host ones in
// allocator.cpp, each CUDA device's in kernels/cuda/device_allocator.cu):
// freed blocks kept by size class for reuse, and the AllocatorStats
// counters. Not locked: the allocator that owns it locks around each call.
class SizeClassCache {
 public:
  // Counts one allocation request, served from the cache or not.
  void count_request() { ++stats_.allocations; }
  // A cached block of `size` bytes, now counted as in use (a cache hit), or
  // null when none is cached.
  void* reuse(std::size_t size);
  // Counts a freshly allocated block of `size` bytes as in use.
  void count_in_use(std::size_t size);
  // Counts a block of `size` bytes as no longer in use...
  void count_freed(std::size_t size) { stats_.in_use_bytes -= size; }
  // ...and keeps it for reuse.
  void keep(void* ptr, std::size_t size);
  // Calls free_block(ptr) for every cached block, by size class, and forgets them.
  template <class FreeBlock>
  void drain(FreeBlock&& free_block) {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) free_block(p);
    free_.clear();
    stats_.cached_bytes = 0;
  }
  const AllocatorStats& stats() const { return stats_; }
  void reset_peak() { stats_.peak_bytes = stats_.in_use_bytes; }

 private:
  std::map<std::size_t, std::vector<void*>> free_;  // size class -> cached blocks
  AllocatorStats stats_;
};

// The caching allocator for ordinary host memory.
Allocator& cpu_allocator();

// The caching allocator for host memory that devices copy from (batches of the
// input pipeline). Plain aligned memory unless a device backend installed a
// hook that supplies page-locked memory.
Allocator& pinned_host_allocator();

// A device backend (CUDA) calls this once to make pinned_host_allocator() hand
// out page-locked memory. Cached buffers from the previous source are released.
struct HostMemoryHook {
  void* (*allocate)(std::size_t nbytes) = nullptr;  // returns nullptr on failure
  void (*deallocate)(void* ptr) = nullptr;
  // Called (without the allocator's lock) before a cached buffer is handed
  // out again; may be null. The CUDA backend copies from page-locked memory
  // asynchronously and waits here until no copy still reads the buffer.
  void (*before_reuse)(void* ptr) = nullptr;
};
void set_pinned_host_memory_hook(HostMemoryHook hook);

// The size class a request is rounded up to (exposed for tests).
std::size_t allocator_size_class(std::size_t nbytes);

}  // namespace petal
