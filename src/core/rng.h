// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). Initialisation draws element i
// of parameter `name` as a pure function of (seed, name, i), so a parameter's values never depend on
// how it is split across ranks or in which order ranks fill their slices.
#pragma once
#include <cstdint>
#include <string_view>

namespace t6 {

uint64_t hash_name(std::string_view name);  // FNV-1a, stable across platforms and runs

class CounterRng {
 public:
  CounterRng(uint64_t seed, std::string_view stream_name);
  // Uniform in [0, 1) with 24 random bits (exactly representable in fp32), for counter `index`.
  float uniform(uint64_t index) const;
  // Uniform in [-bound, bound).
  float uniform_symmetric(uint64_t index, float bound) const { return (2.0f * uniform(index) - 1.0f) * bound; }
  uint32_t bits(uint64_t index) const;

 private:
  uint32_t key_[2];
};

}  // namespace t6
