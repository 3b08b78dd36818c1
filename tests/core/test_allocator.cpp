// The caching host allocator: reuse by size class, statistics, empty_cache,
// alignment and the pinned-memory hook.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "core/allocator.hpp"
#include "core/tensor.hpp"

using namespace petal;

TEST_CASE("size classes round up, waste at most 25% above 256 bytes and never shrink") {
  CHECK(allocator_size_class(1) == 64);
  CHECK(allocator_size_class(64) == 64);
  CHECK(allocator_size_class(65) == 128);
  CHECK(allocator_size_class(256) == 256);
  CHECK(allocator_size_class(257) == 320);
  CHECK(allocator_size_class(1000) == 1024);
  CHECK(allocator_size_class(1025) == 1280);
  std::size_t previous = 0;
  for (std::size_t n = 1; n < (std::size_t{1} << 22); n = n * 3 / 2 + 1) {
    const std::size_t cls = allocator_size_class(n);
    CAPTURE(n);
    CHECK(cls >= n);
    CHECK(cls % Allocator::kAlignment == 0);
    CHECK(cls >= previous);
    if (n > 256) CHECK(cls <= n + n / 4 + 64);
    previous = cls;
  }
}

TEST_CASE("a freed block is reused for a request of the same size class") {
  Allocator& alloc = cpu_allocator();
  alloc.empty_cache();
  const std::size_t n = 3 * 1024 * 1024 + 123;  // an unusual size no other test uses
  void* first = alloc.allocate(n);
  std::memset(first, 1, n);
  alloc.deallocate(first, n);
  const AllocatorStats before = alloc.stats();
  void* second = alloc.allocate(n - 100);  // same class
  const AllocatorStats after = alloc.stats();
  CHECK(second == first);
  CHECK(after.cache_hits == before.cache_hits + 1);
  CHECK(after.allocations == before.allocations + 1);
  alloc.deallocate(second, n - 100);
}

TEST_CASE("stats track in-use, cached and peak bytes; empty_cache releases the cache") {
  Allocator& alloc = cpu_allocator();
  alloc.empty_cache();
  const AllocatorStats base = alloc.stats();
  CHECK(base.cached_bytes == 0);
  const std::size_t a_bytes = 5 * 1024 * 1024 + 7, b_bytes = 7 * 1024 * 1024 + 11;
  const std::size_t a_cls = allocator_size_class(a_bytes), b_cls = allocator_size_class(b_bytes);
  void* a = alloc.allocate(a_bytes);
  void* b = alloc.allocate(b_bytes);
  AllocatorStats s = alloc.stats();
  CHECK(s.in_use_bytes == base.in_use_bytes + a_cls + b_cls);
  CHECK(s.peak_bytes >= s.in_use_bytes);
  const std::size_t peak = s.peak_bytes;
  alloc.deallocate(a, a_bytes);
  s = alloc.stats();
  CHECK(s.in_use_bytes == base.in_use_bytes + b_cls);
  CHECK(s.cached_bytes == a_cls);
  CHECK(s.peak_bytes == peak);  // peak never goes down
  alloc.deallocate(b, b_bytes);
  s = alloc.stats();
  CHECK(s.in_use_bytes == base.in_use_bytes);
  CHECK(s.cached_bytes == a_cls + b_cls);
  alloc.empty_cache();
  CHECK(alloc.stats().cached_bytes == 0);
  CHECK(alloc.stats().in_use_bytes == base.in_use_bytes);
}

TEST_CASE("tensors return their memory to the cache when the last view dies") {
  Allocator& alloc = cpu_allocator();
  alloc.empty_cache();
  const std::size_t before = alloc.stats().in_use_bytes;
  const std::int64_t n = 1 << 18;
  Tensor view;
  {
    Tensor t = zeros({n});
    view = t.slice(0, 10, 20);
    CHECK(alloc.stats().in_use_bytes == before + allocator_size_class(n * 4));
  }
  CHECK(alloc.stats().in_use_bytes == before + allocator_size_class(n * 4));  // the view keeps it alive
  view = Tensor();
  CHECK(alloc.stats().in_use_bytes == before);
  CHECK(alloc.stats().cached_bytes == allocator_size_class(n * 4));
  // The next tensor of that size comes from the cache.
  const std::uint64_t hits = alloc.stats().cache_hits;
  Tensor again = Tensor::empty({n});
  CHECK(alloc.stats().cache_hits == hits + 1);
}

TEST_CASE("every block is 64-byte aligned, distinct while live, and zero bytes is allowed") {
  Allocator& alloc = cpu_allocator();
  std::vector<std::pair<void*, std::size_t>> blocks;
  std::set<void*> seen;
  for (std::size_t n : {0, 1, 63, 64, 65, 200, 4096, 10000, 123457}) {
    void* p = alloc.allocate(n);
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % Allocator::kAlignment == 0);
    CHECK(seen.insert(p).second);
    blocks.emplace_back(p, n);
  }
  for (auto [p, n] : blocks) alloc.deallocate(p, n);
  alloc.deallocate(nullptr, 10);  // ignored
}

TEST_CASE("an impossible request throws petal::Error instead of crashing") {
  Allocator& alloc = cpu_allocator();
  const AllocatorStats before = alloc.stats();
  CHECK_THROWS_AS(alloc.allocate(std::size_t{1} << 62), Error);
  CHECK_THROWS_AS(alloc.allocate(SIZE_MAX), Error);
  CHECK(alloc.stats().in_use_bytes == before.in_use_bytes);
}

namespace {
int g_hook_allocs = 0;
int g_hook_frees = 0;
void* counting_alloc(std::size_t n) {
  ++g_hook_allocs;
  return std::aligned_alloc(64, n);
}
void counting_free(void* p) {
  ++g_hook_frees;
  std::free(p);
}
}  // namespace

TEST_CASE("the pinned host hook supplies the memory of pinned_host_allocator") {
  Allocator& pinned = pinned_host_allocator();
  // A block from the default source, still in use when the hook is installed.
  void* old_block = pinned.allocate(1000);
  set_pinned_host_memory_hook({counting_alloc, counting_free});
  void* p = pinned.allocate(5000);
  CHECK(g_hook_allocs == 1);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
  pinned.deallocate(p, 5000);
  CHECK(g_hook_frees == 0);  // cached, not freed
  void* again = pinned.allocate(5000);
  CHECK(again == p);
  CHECK(g_hook_allocs == 1);
  pinned.deallocate(again, 5000);
  // The old block goes back to its own source, not to the hook's free.
  pinned.deallocate(old_block, 1000);
  CHECK(g_hook_frees == 0);
  {
    Tensor batch = Tensor::empty_pinned({64, 3}, DType::UInt8);
    CHECK(g_hook_allocs == 2);
  }
  pinned.empty_cache();
  CHECK(g_hook_frees == 2);
  CHECK(pinned.stats().cached_bytes == 0);
  // Restoring the default source releases nothing twice.
  set_pinned_host_memory_hook({});
  CHECK(g_hook_frees == 2);
  void* plain = pinned.allocate(100);
  CHECK(g_hook_allocs == 2);
  pinned.deallocate(plain, 100);
}

TEST_CASE("the CPU allocator is not affected by the pinned hook") {
  set_pinned_host_memory_hook({counting_alloc, counting_free});
  const int before = g_hook_allocs;
  Tensor t = zeros({1000});
  CHECK(g_hook_allocs == before);
  set_pinned_host_memory_hook({});
}
