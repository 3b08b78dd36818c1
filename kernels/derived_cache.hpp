// Values that inference derives from its weights on every call (a batch norm
// folded into scale and shift, a depthwise kernel with that scale folded in),
// kept while the weights keep their values.
//
// An entry holds a copy of its inputs' bytes and is used only when the
// inputs still hold exactly those bytes (compared on every lookup). Nothing
// petal or a user can do to a tensor (a write through a pointer kept from
// earlier included) makes a stale value come back; the comparison reads the
// inputs, which costs a fraction of recomputing (no square roots). Only small CPU inputs are kept (a batch norm's four vectors,
// a depthwise kernel); anything else is computed every time. Training
// changes its weights every step: its lookups fail at the first bytes and
// replace the entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/tensor.hpp"

namespace petal::ops::detail {

template <class Value>
class DerivedCache {
 public:
  // `inputs` may hold undefined tensors (an absent bias); `salt` adds the
  // scalar parameters (epsilon's bits, a channel count). `make` computes the
  // value. The value returned is the kept one: callers only read it.
  template <class Make>
  Value get(std::initializer_list<const Tensor*> inputs, std::uint64_t salt, Make&& make) {
    // Found by where the first input's elements are (the weight the value
    // belongs to) and every input's size; the bytes decide.
    Key key{salt, reinterpret_cast<std::uintptr_t>((*inputs.begin())->defined() ? (*inputs.begin())->raw_data()
                                                                                 : nullptr)};
    std::size_t total = 0;
    for (const Tensor* t : inputs) {
      if (!t->defined()) {
        key.push_back(0);
        continue;
      }
      if (!t->device().is_cpu() || !t->is_contiguous()) return make();
      key.insert(key.end(), {static_cast<std::uint64_t>(t->numel()), static_cast<std::uint64_t>(t->dtype())});
      total += t->nbytes();
    }
    if (total > kMaxInputBytes) return make();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = entries_.find(key);
      if (it != entries_.end() && same_bytes(it->second.inputs, inputs)) return it->second.value;
    }
    // Computed outside the lock: the inputs are only read, and two threads
    // that compute the same value store equal values.
    Value value = make();
    std::vector<unsigned char> bytes;
    bytes.reserve(total);
    for (const Tensor* t : inputs) {
      if (!t->defined()) continue;
      const auto* p = static_cast<const unsigned char*>(t->raw_data());
      bytes.insert(bytes.end(), p, p + t->nbytes());
    }
    std::lock_guard<std::mutex> lock(mutex_);
    // Entries of tensors that died stay until the bound clears them all.
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.insert_or_assign(std::move(key), Entry{std::move(bytes), value});
    return value;
  }

 private:
  using Key = std::vector<std::uint64_t>;
  struct KeyHash {
    std::size_t operator()(const Key& key) const {
      std::uint64_t h = 1469598103934665603ull;
      for (std::uint64_t v : key) h = (h ^ v) * 1099511628211ull;
      return static_cast<std::size_t>(h);
    }
  };
  struct Entry {
    std::vector<unsigned char> inputs;  // the inputs' bytes, in order
    Value value;
  };
  static constexpr std::size_t kMaxEntries = 2048;
  static constexpr std::size_t kMaxInputBytes = std::size_t{256} << 10;

  static bool same_bytes(const std::vector<unsigned char>& kept, std::initializer_list<const Tensor*> inputs) {
    std::size_t at = 0;
    for (const Tensor* t : inputs) {
      if (!t->defined()) continue;
      if (std::memcmp(kept.data() + at, t->raw_data(), t->nbytes()) != 0) return false;
      at += t->nbytes();
    }
    return true;
  }

  std::mutex mutex_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
};

}  // namespace petal::ops::detail
