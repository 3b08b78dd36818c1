#include "nn/constant_weights.hpp"

#include <cstdio>
#include <cstring>

namespace petal::nn {
namespace {

// A 64-bit digest of a CPU tensor's bytes (four independent lanes, so it
// runs at memory speed). Not a cryptographic hash: it detects writes, not
// an adversary. Other devices and strided views digest to 0 (not checked).
std::uint64_t checksum(const Tensor& t) {
  if (!t.defined() || !t.device().is_cpu() || !t.is_contiguous()) return 0;
  const auto* bytes = static_cast<const unsigned char*>(t.raw_data());
  const std::size_t n = t.nbytes();
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t lane[4] = {1, 2, 3, 4};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      std::uint64_t w;
      std::memcpy(&w, bytes + i + 8 * l, 8);
      lane[l] = (lane[l] ^ w) * kMul;
      lane[l] ^= lane[l] >> 29;
    }
  }
  std::uint64_t h = n;
  for (; i < n; ++i) h = (h ^ bytes[i]) * kMul;
  for (std::uint64_t l : lane) h = (h ^ l) * kMul;
  return h ^ (h >> 31);
}

}  // namespace

ConstantWeights::ConstantWeights(const Module& module) {
  for (const WeightRef& w : module.weights()) {
    const Tensor& data = w.variable.data();
    declared_.push_back({w.path, std::make_unique<ops::ConstantDeclaration>(data), checksum(data)});
  }
}

std::vector<std::string> ConstantWeights::changed_weights() const {
  std::vector<std::string> changed;
  for (const Declared& d : declared_)
    if (checksum(d.declaration->tensor()) != d.checksum) changed.push_back(d.name);
  return changed;
}

ConstantWeights::~ConstantWeights() {
  const std::vector<std::string> changed = changed_weights();
  if (changed.empty()) return;
  std::string names;
  for (const std::string& name : changed) names += (names.empty() ? "" : ", ") + name;
  std::fprintf(stderr,
               "petal: warning: weights changed while declared constant by nn::ConstantWeights (%s); inference in "
               "that scope may have used their earlier values\n",
               names.c_str());
}

}  // namespace petal::nn
