// bfloat16 conversions (round to nearest even), usable on host and device.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define T6_HOST_DEVICE __host__ __device__
#else
#define T6_HOST_DEVICE
#endif

namespace t6 {

T6_HOST_DEVICE inline uint16_t float_to_bf16_bits(float value) {
  uint32_t bits;
  memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return uint16_t((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

T6_HOST_DEVICE inline float bf16_bits_to_float(uint16_t half) {
  uint32_t bits = uint32_t(half) << 16;
  float value;
  memcpy(&value, &bits, 4);
  return value;
}

// The value a float takes after a round trip through bf16.
T6_HOST_DEVICE inline float round_to_bf16(float value) { return bf16_bits_to_float(float_to_bf16_bits(value)); }

}  // namespace t6
