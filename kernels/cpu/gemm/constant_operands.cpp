#include "kernels/cpu/gemm/constant_operands.hpp"

#include <algorithm>
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

// The declared ranges sorted by where they begin, for lookups by address:
// inference asks for every weight it folds or multiplies, and a walk over
// MobileNetV2's 260 declarations (cold map nodes) took about 10 us per
// address it did not find, 30 us of every batch-1 call in the stem alone.
class RangeIndex {
 public:
  void rebuild(const std::map<std::uint64_t, Range>& ranges) {
    entries_.clear();
    for (const auto& [id, r] : ranges) entries_.push_back({r.begin, r.end, id});
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
    reach_.resize(entries_.size());
    std::uintptr_t reach = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) reach_[i] = reach = std::max(reach, entries_[i].end);
  }

  // A declaration whose range holds [begin, end) wholly; 0 if none.
  std::uint64_t holder(std::uintptr_t begin, std::uintptr_t end) const {
    // Candidates begin at or before `begin`; none before i reaches `end`
    // once reach_[i] (the furthest end up to i) falls short of it.
    for (std::size_t i = first_after(begin); i-- > 0 && reach_[i] >= end;)
      if (entries_[i].end >= end) return entries_[i].id;
    return 0;
  }

  // Whether any range meets [begin, end) (end > begin).
  bool overlaps(std::uintptr_t begin, std::uintptr_t end) const {
    for (std::size_t i = first_after(end - 1); i-- > 0 && reach_[i] > begin;)
      if (entries_[i].end > begin) return true;
    return false;
  }

 private:
  struct Entry {
    std::uintptr_t begin, end;
    std::uint64_t id;
  };
  // The index of the first range that begins after `address`.
  std::size_t first_after(std::uintptr_t address) const {
    return static_cast<std::size_t>(
        std::upper_bound(entries_.begin(), entries_.end(), address,
                         [](std::uintptr_t a, const Entry& e) { return a < e.begin; }) -
        entries_.begin());
  }
  std::vector<Entry> entries_;
  std::vector<std::uintptr_t> reach_;
};

struct Registry {
  // Read without the lock, so that sgemm pays one atomic load while nothing
  // is declared.
  std::atomic<std::size_t> declared{0};
  std::atomic<std::uint64_t> withdrawals{0};
  std::shared_mutex mutex;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, Range> ranges;
  RangeIndex index;  // `ranges` by address
  std::map<OperandKey, PackedEntry> packed;
  std::vector<void (*)()> listeners;  // only added to

  void declare(std::uint64_t id, Range range) {
    ranges[id] = range;
    index.rebuild(ranges);
    declared.store(ranges.size(), std::memory_order_release);
  }

  // Drops a declaration and what was packed from it (the lock held).
  void withdraw(std::uint64_t id) {
    ranges.erase(id);
    index.rebuild(ranges);
    withdrawals.fetch_add(1, std::memory_order_acq_rel);
    std::erase_if(packed, [id](const auto& entry) { return entry.second.declaration == id; });
    declared.store(ranges.size(), std::memory_order_release);
  }

  // A declaration whose range holds [begin, end) wholly; 0 if none.
  std::uint64_t holder(std::uintptr_t begin, std::uintptr_t end) const { return index.holder(begin, end); }
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
  r.declare(id, Range{b, b + bytes});
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
  if (bytes == 0) return false;  // nothing to overlap
  const auto b = reinterpret_cast<std::uintptr_t>(begin);
  std::shared_lock lock(r.mutex);
  return r.index.overlaps(b, b + bytes);
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
