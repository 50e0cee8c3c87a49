// exp for the hot loops of the CPU backend (the softmax over 50k logits per row): libm's expf is a
// scalar call per element; this one is branch-free arithmetic the compiler vectorises. Cephes'
// single-precision method: x = n·ln2 + r, a degree-6 polynomial for e^r, 2^n from the exponent
// bits; about 1 ulp over the range, far inside every tolerance of the model. fp64 code (the
// finite-difference tests' path) keeps std::exp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace t6::ops::cpu {

inline float vector_exp(float x) {
  // Beyond these e^x leaves the normal floats; softmax inputs (x − max ≤ 0) only reach the low end.
  // Compare-and-select (a NaN stays NaN); vectorised thanks to -fno-trapping-math (CMakeLists.txt).
  x = x < -87.3365447505f ? -87.3365447505f : x;
  x = x > 88.7228391117f ? 88.7228391117f : x;
  const float scaled = x * 1.44269504088896341f + 0.5f;
  int32_t n = int32_t(scaled);
  n -= int32_t(scaled < float(n));  // floor, written so that it vectorises
  const float nf = float(n);
  // r = x − n·ln2 in two parts, so that the reduction is exact to float precision.
  const float r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent_bits = (n + 127) << 23;
  float power;
  std::memcpy(&power, &exponent_bits, sizeof power);
  return p * power;
}

}  // namespace t6::ops::cpu
