#include "kernels/cpu/gemm/constant_operands.hpp"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <tuple>
#include <vector>

namespace petal::cpu {
namespace {

struct Range {
  std::uintptr_t begin, end;
};

// (layout, b, ldb, k, n)
using OperandKey = std::tuple<const void*, std::uintptr_t, std::int64_t, std::int64_t, std::int64_t>;

struct PackedEntry {
  std::uint64_t declaration;  // whose memory it was packed from
  std::shared_ptr<const PackedOperand> packed;
};

struct Registry {
  // Read without the lock, so that sgemm pays one atomic load while nothing
  // is declared.
  std::atomic<std::size_t> declared{0};
  std::atomic<std::uint64_t> withdrawals{0};
  std::shared_mutex mutex;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, Range> ranges;
  std::map<OperandKey, PackedEntry> packed;
  std::vector<void (*)()> listeners;  // only added to

  // Drops a declaration and what was packed from it (the lock held).
  void withdraw(std::uint64_t id) {
    ranges.erase(id);
    withdrawals.fetch_add(1, std::memory_order_acq_rel);
    std::erase_if(packed, [id](const auto& entry) { return entry.second.declaration == id; });
    declared.store(ranges.size(), std::memory_order_release);
  }

  // The declaration whose range holds [begin, end) wholly; 0 if none.
  std::uint64_t holder(std::uintptr_t begin, std::uintptr_t end) const {
    for (const auto& [id, r] : ranges)
      if (begin >= r.begin && end <= r.end) return id;
    return 0;
  }
};

// Never destroyed: a declaration held by a static object may end after main().
Registry& registry() {
  static auto* r = new Registry;
  return *r;
}

}  // namespace

PackedOperand::PackedOperand(std::size_t floats) {
  const std::size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
  if (data_ == nullptr) throw std::bad_alloc();
}

PackedOperand::~PackedOperand() { std::free(data_); }

std::uint64_t declare_constant(const void* begin, std::size_t bytes) {
  Registry& r = registry();
  std::unique_lock lock(r.mutex);
  const std::uint64_t id = r.next_id++;
  const auto b = reinterpret_cast<std::uintptr_t>(begin);
  r.ranges[id] = Range{b, b + bytes};
  r.declared.store(r.ranges.size(), std::memory_order_release);
  return id;
}

void withdraw_constant(std::uint64_t id) {
  Registry& r = registry();
  std::vector<void (*)()> listeners;
  {
    std::unique_lock lock(r.mutex);
    listeners = r.listeners;
    r.withdraw(id);
  }
  for (void (*listener)() : listeners) listener();
}

void on_constant_withdrawn(void (*listener)()) {
  Registry& r = registry();
  std::unique_lock lock(r.mutex);
  r.listeners.push_back(listener);
}

bool any_declared_constant() { return registry().declared.load(std::memory_order_acquire) != 0; }

bool overlaps_declared_constant(const void* begin, std::size_t bytes) {
  Registry& r = registry();
  if (r.declared.load(std::memory_order_acquire) == 0) return false;
  const auto b = reinterpret_cast<std::uintptr_t>(begin), e = b + bytes;
  std::shared_lock lock(r.mutex);
  for (const auto& [id, range] : r.ranges)
    if (b < range.end && range.begin < e) return true;
  return false;
}

bool inside_declared_constant(const void* begin, std::size_t bytes) {
  Registry& r = registry();
  if (r.declared.load(std::memory_order_acquire) == 0) return false;
  const auto b = reinterpret_cast<std::uintptr_t>(begin);
  std::shared_lock lock(r.mutex);
  return r.holder(b, b + bytes) != 0;
}

std::uint64_t constant_withdrawals() { return registry().withdrawals.load(std::memory_order_acquire); }

std::shared_ptr<const PackedOperand> packed_constant_operand(const void* layout, const float* b, std::int64_t ldb,
                                                             std::int64_t k, std::int64_t n, std::size_t floats,
                                                             const std::function<void(float*)>& pack) {
  Registry& r = registry();
  if (r.declared.load(std::memory_order_acquire) == 0 || k <= 0 || n <= 0) return nullptr;
  const auto begin = reinterpret_cast<std::uintptr_t>(b);
  const std::uintptr_t end = begin + static_cast<std::uintptr_t>((k - 1) * ldb + n) * sizeof(float);
  const OperandKey key{layout, begin, ldb, k, n};
  {
    std::shared_lock lock(r.mutex);
    const auto it = r.packed.find(key);
    if (it != r.packed.end()) return it->second.packed;
    if (r.holder(begin, end) == 0) return nullptr;
  }
  // Packed under the exclusive lock: a second thread asking for the same
  // window waits for this copy rather than making its own. It happens once
  // per window and declaration.
  std::unique_lock lock(r.mutex);
  const auto it = r.packed.find(key);
  if (it != r.packed.end()) return it->second.packed;
  const std::uint64_t declaration = r.holder(begin, end);
  if (declaration == 0) return nullptr;
  auto packed = std::make_shared<PackedOperand>(floats);
  pack(packed->data());
  r.packed.emplace(key, PackedEntry{declaration, packed});
  return packed;
}

}  // namespace petal::cpu
