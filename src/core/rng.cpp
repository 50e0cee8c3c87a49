#include "core/rng.h"

namespace t6 {

uint64_t hash_name(std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

CounterRng::CounterRng(uint64_t seed, std::string_view stream_name) {
  const uint64_t key = hash_name(stream_name) ^ (seed * 0x9e3779b97f4a7c15ull);
  key_[0] = uint32_t(key);
  key_[1] = uint32_t(key >> 32);
}

uint32_t CounterRng::bits(uint64_t index) const {
  uint32_t counter[4] = {uint32_t(index), uint32_t(index >> 32), 0x243f6a88u, 0x85a308d3u};
  uint32_t key[2] = {key_[0], key_[1]};
  for (int round = 0; round < 10; ++round) {
    const uint64_t product0 = uint64_t(0xD2511F53u) * counter[0];
    const uint64_t product1 = uint64_t(0xCD9E8D57u) * counter[2];
    const uint32_t next[4] = {uint32_t(product1 >> 32) ^ counter[1] ^ key[0], uint32_t(product1),
                              uint32_t(product0 >> 32) ^ counter[3] ^ key[1], uint32_t(product0)};
    for (int i = 0; i < 4; ++i) counter[i] = next[i];
    key[0] += 0x9E3779B9u;
    key[1] += 0xBB67AE85u;
  }
  return counter[0];
}

float CounterRng::uniform(uint64_t index) const { return float(bits(index) >> 8) * (1.0f / 16777216.0f); }

}  // namespace t6
