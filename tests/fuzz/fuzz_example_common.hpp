// Shared by the targets that decode tf.train.Example (fuzz_example,
// fuzz_protobuf_wire).
#pragma once

#include "data/example.hpp"
#include "fuzz_common.hpp"

namespace petal::fuzz {

// The same features: keys, types and values, floats compared bit for bit.
inline bool same_example(const data::Example& a, const data::Example& b) {
  if (a.features.size() != b.features.size()) return false;
  for (auto ia = a.features.begin(), ib = b.features.begin(); ia != a.features.end(); ++ia, ++ib) {
    const data::Feature& fa = ia->second;
    const data::Feature& fb = ib->second;
    if (ia->first != ib->first || fa.type != fb.type || fa.bytes != fb.bytes || fa.int64s != fb.int64s ||
        fa.floats.size() != fb.floats.size())
      return false;
    for (std::size_t i = 0; i < fa.floats.size(); ++i)
      if (!same_bits(fa.floats[i], fb.floats[i])) return false;
  }
  return true;
}

}  // namespace petal::fuzz
