#include "core/allocator.hpp"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.hpp"

namespace petal {

// Larger than any machine's memory: refused before rounding, so the size-class
// arithmetic below cannot overflow (and a corrupt size fails fast).
constexpr std::size_t kMaxRequestBytes = std::size_t{1} << 56;

std::size_t allocator_size_class(std::size_t nbytes) {
  if (nbytes <= 256) return nbytes <= 64 ? 64 : (nbytes + 63) / 64 * 64;
  if (nbytes > kMaxRequestBytes) return nbytes;  // allocate() refuses these
  // Four classes per power of two: at most 25% waste, many reuses.
  std::size_t pow2 = 256;
  while (pow2 * 2 < nbytes) pow2 *= 2;
  const std::size_t step = pow2 / 4;
  return (nbytes + step - 1) / step * step;
}

void* SizeClassCache::reuse(std::size_t size) {
  auto it = free_.find(size);
  if (it == free_.end() || it->second.empty()) return nullptr;
  void* ptr = it->second.back();
  it->second.pop_back();
  stats_.cached_bytes -= size;
  ++stats_.cache_hits;
  count_in_use(size);
  return ptr;
}

void SizeClassCache::count_in_use(std::size_t size) {
  stats_.in_use_bytes += size;
  if (stats_.in_use_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.in_use_bytes;
}

void SizeClassCache::keep(void* ptr, std::size_t size) {
  free_[size].push_back(ptr);
  stats_.cached_bytes += size;
}

namespace {

void* aligned_backing_alloc(std::size_t nbytes) {
  return std::aligned_alloc(Allocator::kAlignment, nbytes);
}
void aligned_backing_free(void* p) { std::free(p); }

class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(const char* name) : name_(name) {}
  ~CachingAllocator() override {
    // Process exit: memory goes back with the process; freeing keeps leak
    // checkers quiet.
    release_all_locked();
  }

  void set_backing(HostMemoryHook hook) {
    std::lock_guard<std::mutex> lock(mutex_);
    release_all_locked();
    backing_alloc_ = hook.allocate ? hook.allocate : aligned_backing_alloc;
    backing_free_ = hook.deallocate ? hook.deallocate : aligned_backing_free;
    before_reuse_ = hook.before_reuse;
  }

  void* allocate(std::size_t nbytes) override {
    if (nbytes > kMaxRequestBytes)
      throw Error(str_cat(name_, " allocator: cannot allocate ", nbytes, " bytes (more than any machine has)"));
    const std::size_t cls = allocator_size_class(nbytes == 0 ? 1 : nbytes);
    std::unique_lock<std::mutex> lock(mutex_);
    cache_.count_request();
    if (void* ptr = cache_.reuse(cls)) {
      void (*before_reuse)(void*) = before_reuse_;
      lock.unlock();
      if (before_reuse) before_reuse(ptr);  // may wait (for a device still reading the buffer)
      return ptr;
    }
    void* ptr = backing_alloc_(cls);
    if (!ptr) {
      // Give the cache back and try once more before failing.
      release_all_locked();
      ptr = backing_alloc_(cls);
    }
    if (!ptr)
      throw Error(str_cat(name_, " allocator: out of memory allocating ", nbytes, " bytes (",
                          cache_.stats().in_use_bytes, " bytes in use)"));
    owner_.emplace(ptr, Block{cls, backing_free_});
    cache_.count_in_use(cls);
    return ptr;
  }

  void deallocate(void* ptr, std::size_t nbytes) override {
    if (!ptr) return;
    const std::size_t cls = allocator_size_class(nbytes == 0 ? 1 : nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    cache_.count_freed(cls);
    auto owner = owner_.find(ptr);
    if (owner != owner_.end() && owner->second.free_fn != backing_free_) {
      // Allocated from a previous backing source: return it there.
      owner->second.free_fn(ptr);
      owner_.erase(owner);
      return;
    }
    cache_.keep(ptr, cls);
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return cache_.stats();
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    release_all_locked();
  }

 private:
  struct Block {
    std::size_t size_class;
    void (*free_fn)(void*);
  };

  void release_all_locked() {
    cache_.drain([&](void* p) {
      auto owner = owner_.find(p);
      owner->second.free_fn(p);
      owner_.erase(owner);
    });
  }

  const char* name_;
  mutable std::mutex mutex_;
  SizeClassCache cache_;
  std::map<void*, Block> owner_;  // every block handed out or cached, with its backing source
  void* (*backing_alloc_)(std::size_t) = aligned_backing_alloc;
  void (*backing_free_)(void*) = aligned_backing_free;
  void (*before_reuse_)(void*) = nullptr;
};

CachingAllocator& cpu_instance() {
  // Never destroyed: tensors in static objects may be freed after main().
  static auto* instance = new CachingAllocator("cpu");
  return *instance;
}

CachingAllocator& pinned_instance() {
  static auto* instance = new CachingAllocator("pinned host");
  return *instance;
}

}  // namespace

Allocator& cpu_allocator() { return cpu_instance(); }
Allocator& pinned_host_allocator() { return pinned_instance(); }
void set_pinned_host_memory_hook(HostMemoryHook hook) { pinned_instance().set_backing(hook); }

}  // namespace petal
