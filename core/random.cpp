#include "core/random.hpp"

#include <cmath>

#include "core/error.hpp"

namespace petal {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Generator::Generator(std::uint64_t seed_value) { seed(seed_value); }

void Generator::seed(std::uint64_t seed_value) {
  std::uint64_t x = seed_value;
  for (auto& word : s_) word = splitmix64(x);
  has_spare_ = false;
  spare_ = 0.0;
}

std::uint64_t Generator::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Generator::uniform_float() { return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f; }

double Generator::uniform_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::uint64_t Generator::uniform_int(std::uint64_t n) {
  PETAL_CHECK(n > 0, ValueError, "Generator::uniform_int: the range [0, n) is empty (n = 0)");
  // Rejection sampling: retry values from the incomplete last block.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v;
  do v = next_u64();
  while (v >= limit);
  return v % n;
}

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1;
  do u1 = uniform_double();
  while (u1 <= 0.0);
  const double u2 = uniform_double();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 6.283185307179586476925 * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

Generator::State Generator::state() const { return {s_, has_spare_, spare_}; }

void Generator::set_state(const State& st) {
  s_ = st.s;
  has_spare_ = st.has_spare;
  spare_ = st.spare;
}

Generator& default_generator() {
  static Generator g(0x5eed);
  return g;
}

void manual_seed(std::uint64_t seed_value) { default_generator().seed(seed_value); }

}  // namespace petal
