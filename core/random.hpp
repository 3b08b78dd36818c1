// Seeded random numbers that are the same on every machine: xoshiro256**
// seeded through splitmix64, with our own uniform and normal transforms
// (std:: distributions differ between standard libraries).
#pragma once

#include <array>
#include <cstdint>

namespace petal {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0x5eed);
  void seed(std::uint64_t seed);

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits (float) / 53 bits (double).
  float uniform_float();
  double uniform_double();
  // Uniform integer in [0, n), n > 0, without modulo bias.
  std::uint64_t uniform_int(std::uint64_t n);
  // Standard normal (Box-Muller in double precision).
  double normal();

  // The complete state, for checkpoints that resume exactly.
  struct State {
    std::array<std::uint64_t, 4> s;
    bool has_spare;
    double spare;
  };
  State state() const;
  void set_state(const State& st);

 private:
  std::array<std::uint64_t, 4> s_{};
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// The process-wide generator used when none is given.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

}  // namespace petal
