#include <cmath>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x) {
  T6_CUDA_TWIN(out, rmsnorm_forward(out, rstd, x));
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
  T6_CUDA_TWIN(dx, rmsnorm_backward(dx, dout, x, rstd));
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

}  // namespace t6::ops
