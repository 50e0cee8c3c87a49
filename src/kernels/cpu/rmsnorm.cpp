// RMSNorm without weight (the blocks' norms, eps = fp32 epsilon) and with a learned weight (MLA's
// latent norms, eps 1e-6), one row loop for both.
#include <cmath>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {

// out = (x · rstd) ⊙ weight, or x · rstd without a weight. As the reference's RMSNorm module, the
// normalised value is rounded before the weight multiplies it.
template <class T>
void normalise_rows(const char* op, Tensor out, Tensor rstd, const Tensor& x, const T* weight, double eps) {
  const int64_t d = matrix_cols(x), rows = matrix_rows(x);
  T6_CHECK(rstd.numel() == rows, op, ": rstd must have one element per row");
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < rows; ++n) {
    const T* row = x.data<T>() + n * d;
    T sum = 0;
    for (int64_t j = 0; j < d; ++j) sum += row[j] * row[j];
    const T inv = T(1) / std::sqrt(sum / T(d) + T(eps));
    rstd.data<T>()[n] = inv;
    T* o = out.data<T>() + n * d;
    for (int64_t j = 0; j < d; ++j) o[j] = weight ? (row[j] * inv) * weight[j] : row[j] * inv;
  }
}

// dx += rstd · (g − x · rstd² · mean(g · x)) with g = dout ⊙ weight (g = dout without a weight).
template <class T>
void normalise_rows_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd, const T* weight) {
  const int64_t d = matrix_cols(x), rows = matrix_rows(x);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < rows; ++n) {
    const T *row = x.data<T>() + n * d, *g = dout.data<T>() + n * d;
    const T inv = rstd.data<T>()[n];
    T dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += (weight ? g[j] * weight[j] : g[j]) * row[j];
    const T correction = dot * inv * inv / T(d);
    T* out = dx.data<T>() + n * d;
    for (int64_t j = 0; j < d; ++j) out[j] += inv * ((weight ? g[j] * weight[j] : g[j]) - row[j] * correction);
  }
}

void require_weight_fits(const char* op, const Tensor& weight, const Tensor& x) {
  T6_CHECK(weight.numel() == matrix_cols(x), op, ": weight has ", weight.numel(), " elements for rows of ", matrix_cols(x));
}

}  // namespace

void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x) {
  T6_CUDA_TWIN(out, rmsnorm_forward(out, rstd, x));
  require_same_shape("rmsnorm_forward", out, x);
  for_float_type(t6_twin_routed, "rmsnorm_forward", {&out, &rstd, &x}, [&](auto zero) {
    using T = decltype(zero);
    normalise_rows<T>("rmsnorm_forward", out, rstd, x, nullptr, kRmsNormEps);
  });
}

void rmsnorm_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd) {
  T6_CUDA_TWIN(dx, rmsnorm_backward(dx, dout, x, rstd));
  require_same_shape("rmsnorm_backward", dx, x);
  require_same_shape("rmsnorm_backward", dout, x);
  for_float_type(t6_twin_routed, "rmsnorm_backward", {&dx, &dout, &x, &rstd}, [&](auto zero) {
    using T = decltype(zero);
    normalise_rows_backward<T>(dx, dout, x, rstd, nullptr);
  });
}

void weighted_rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x, const Tensor& weight) {
  T6_CUDA_TWIN(out, weighted_rmsnorm_forward(out, rstd, x, weight));
  require_same_shape("weighted_rmsnorm_forward", out, x);
  require_weight_fits("weighted_rmsnorm_forward", weight, x);
  for_float_type(t6_twin_routed, "weighted_rmsnorm_forward", {&out, &rstd, &x, &weight}, [&](auto zero) {
    using T = decltype(zero);
    normalise_rows<T>("weighted_rmsnorm_forward", out, rstd, x, weight.data<T>(), kWeightedRmsNormEps);
  });
}

void weighted_rmsnorm_backward(Tensor dx, Tensor dweight, const Tensor& dout, const Tensor& x, const Tensor& rstd,
                               const Tensor& weight) {
  T6_CUDA_TWIN(dx, weighted_rmsnorm_backward(dx, dweight, dout, x, rstd, weight));
  require_same_shape("weighted_rmsnorm_backward", dx, x);
  require_same_shape("weighted_rmsnorm_backward", dout, x);
  require_same_shape("weighted_rmsnorm_backward", dweight, weight);
  require_weight_fits("weighted_rmsnorm_backward", weight, x);
  for_float_type(t6_twin_routed, "weighted_rmsnorm_backward", {&dx, &dweight, &dout, &x, &rstd, &weight}, [&](auto zero) {
    using T = decltype(zero);
    normalise_rows_backward<T>(dx, dout, x, rstd, weight.data<T>());
    const int64_t d = matrix_cols(x), rows = matrix_rows(x);
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
