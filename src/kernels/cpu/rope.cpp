#include <cmath>

#include "core/bf16.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void rope_tables(Tensor cos, Tensor sin) {
  T6_CUDA_TWIN(cos, rope_tables(cos, sin));
  require_same_shape("rope_tables", cos, sin);
  for_float_type(t6_twin_routed, "rope_tables", {&cos, &sin}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t T_len = cos.size(0), half = cos.size(1), D = 2 * half;
    for (int64_t i = 0; i < half; ++i) {
      // As the reference: inv_freq = 1 / 10000^(2i/D) and θ = t·inv_freq, each step in fp32.
      const float exponent = float(2 * i) / float(D);
      const float inv_freq = 1.0f / std::pow(10000.0f, exponent);
      for (int64_t t = 0; t < T_len; ++t) {
        const float theta = float(t) * inv_freq;
        // The reference rounds its tables to bf16 in every precision (docs/MODEL.md 1.1).
        cos.data<T>()[t * half + i] = T(round_to_bf16(float(std::cos(double(theta)))));
        sin.data<T>()[t * half + i] = T(round_to_bf16(float(std::sin(double(theta)))));
      }
    }
  });
}

namespace {
// Rotates each half-split pair (x1, x2) = (x[first + i], x[first + i + D/2]) of the last D columns
// of each row: forward (transpose = false) is y1 = x1·c + x2·s, y2 = −x1·s + x2·c; its transpose is
// y1 = x1·c − x2·s, y2 = x1·s + x2·c.
template <class T>
void rotate(Tensor x, const Tensor& cos, const Tensor& sin, int64_t first, bool transpose) {
  T6_CHECK(x.ndim() == 4, "rope: expected a (B, T, R, D) tensor, got ", x.shape().to_string());
  const int64_t B = x.size(0), T_len = x.size(1), R = x.size(2), W = x.size(3), half = (W - first) / 2;
  T6_CHECK(first >= 0 && first < W, "rope: first rotated column ", first, " is outside rows of ", W);
  T6_CHECK(cos.size(0) >= T_len && 2 * cos.size(1) == W - first, "rope: tables ", cos.shape().to_string(),
           " do not cover sequence length ", T_len, " and rotary dim ", W - first);
  const T sign = transpose ? T(-1) : T(1);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T_len; ++t) {
      const T* c = cos.data<T>() + t * half;
      const T* s = sin.data<T>() + t * half;
      for (int64_t r = 0; r < R; ++r) {
        T* row = x.data<T>() + ((b * T_len + t) * R + r) * W + first;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = row[i], x2 = row[i + half];
          row[i] = x1 * c[i] + sign * x2 * s[i];
          row[i + half] = -sign * x1 * s[i] + x2 * c[i];
        }
      }
    }
  }
}
}  // namespace

void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t first_column) {
  T6_CUDA_TWIN(x, rope_forward(x, cos, sin, first_column));
  for_float_type(t6_twin_routed, "rope_forward", {&x, &cos, &sin},
                 [&](auto zero) { rotate<decltype(zero)>(x, cos, sin, first_column, false); });
}

void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t first_column) {
  T6_CUDA_TWIN(dx, rope_backward(dx, cos, sin, first_column));
  for_float_type(t6_twin_routed, "rope_backward", {&dx, &cos, &sin},
                 [&](auto zero) { rotate<decltype(zero)>(dx, cos, sin, first_column, true); });
}

}  // namespace t6::ops
