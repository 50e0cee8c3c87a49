// RMSNorm without weight (the blocks' norms) and with a learned weight (MLA's latent norms).
#include <cmath>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x) {
  require_same_shape("rmsnorm_forward", out, x);
  for_float_type("rmsnorm_forward", {&out, &rstd, &x}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(x), rows = matrix_rows(x);
    T6_CHECK(rstd.numel() == rows, "rmsnorm_forward: rstd must have one element per row");
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const T* row = x.data<T>() + n * d;
      T sum = 0;
      for (int64_t j = 0; j < d; ++j) sum += row[j] * row[j];
      const T inv = T(1) / std::sqrt(sum / T(d) + T(kRmsNormEps));
      rstd.data<T>()[n] = inv;
      T* o = out.data<T>() + n * d;
      for (int64_t j = 0; j < d; ++j) o[j] = row[j] * inv;
    }
  });
}

void rmsnorm_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd) {
  require_same_shape("rmsnorm_backward", dx, x);
  require_same_shape("rmsnorm_backward", dout, x);
  for_float_type("rmsnorm_backward", {&dx, &dout, &x, &rstd}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(x), rows = matrix_rows(x);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const T *row = x.data<T>() + n * d, *g = dout.data<T>() + n * d;
      const T inv = rstd.data<T>()[n];
      T dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += g[j] * row[j];
      const T correction = dot * inv * inv / T(d);
      T* out = dx.data<T>() + n * d;
      for (int64_t j = 0; j < d; ++j) out[j] += inv * (g[j] - row[j] * correction);
    }
  });
}

// MLA's latent norms: as the reference's RMSNorm module, the normalised value is rounded (in fp32)
// before the weight multiplies it, so out = (x · rstd) · w in that order.
void weighted_rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x, const Tensor& weight) {
  require_same_shape("weighted_rmsnorm_forward", out, x);
  for_float_type("weighted_rmsnorm_forward", {&out, &rstd, &x, &weight}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(x), rows = matrix_rows(x);
    T6_CHECK(rstd.numel() == rows, "weighted_rmsnorm_forward: rstd must have one element per row");
    T6_CHECK(weight.numel() == d, "weighted_rmsnorm_forward: weight has ", weight.numel(), " elements for rows of ", d);
    const T* w = weight.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const T* row = x.data<T>() + n * d;
      T sum = 0;
      for (int64_t j = 0; j < d; ++j) sum += row[j] * row[j];
      const T inv = T(1) / std::sqrt(sum / T(d) + T(kWeightedRmsNormEps));
      rstd.data<T>()[n] = inv;
      T* o = out.data<T>() + n * d;
      for (int64_t j = 0; j < d; ++j) o[j] = (row[j] * inv) * w[j];
    }
  });
}

void weighted_rmsnorm_backward(Tensor dx, Tensor dweight, const Tensor& dout, const Tensor& x, const Tensor& rstd,
                               const Tensor& weight) {
  require_same_shape("weighted_rmsnorm_backward", dx, x);
  require_same_shape("weighted_rmsnorm_backward", dout, x);
  require_same_shape("weighted_rmsnorm_backward", dweight, weight);
  for_float_type("weighted_rmsnorm_backward", {&dx, &dweight, &dout, &x, &rstd, &weight}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(x), rows = matrix_rows(x);
    T6_CHECK(weight.numel() == d, "weighted_rmsnorm_backward: weight has ", weight.numel(), " elements for rows of ", d);
    const T* w = weight.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const T *row = x.data<T>() + n * d, *g = dout.data<T>() + n * d;
      const T inv = rstd.data<T>()[n];
      T dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += g[j] * w[j] * row[j];
      const T correction = dot * inv * inv / T(d);
      T* out = dx.data<T>() + n * d;
      for (int64_t j = 0; j < d; ++j) out[j] += inv * (g[j] * w[j] - row[j] * correction);
    }
    // One column per thread: the weight gradient sums over rows without races, in a fixed order.
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < d; ++j) {
      T sum = 0;
      for (int64_t n = 0; n < rows; ++n) sum += dout.data<T>()[n * d + j] * x.data<T>()[n * d + j] * rstd.data<T>()[n];
      dweight.data<T>()[j] += sum;
    }
  });
}

}  // namespace t6::ops
