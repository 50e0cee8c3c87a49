// matmul through BLAS (OpenBLAS), and the element-wise helpers.
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;


void matmul(Tensor out, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, float alpha, float beta) {
  T6_CUDA_TWIN(out, matmul(out, a, b, transpose_a, transpose_b, alpha, beta));
  for_float_type("matmul", {&out, &a, &b}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t M = transpose_a ? matrix_cols(a) : matrix_rows(a);
    const int64_t K = transpose_a ? matrix_rows(a) : matrix_cols(a);
    const int64_t K_b = transpose_b ? matrix_cols(b) : matrix_rows(b);
    const int64_t N = transpose_b ? matrix_rows(b) : matrix_cols(b);
    T6_CHECK(K == K_b && out.numel() == M * N, "matmul: shapes ", a.shape().to_string(), (transpose_a ? "ᵀ" : ""),
             " · ", b.shape().to_string(), (transpose_b ? "ᵀ" : ""), " → ", out.shape().to_string(), " do not fit");
    if (M == 0 || N == 0) return;
    gemm(transpose_a, transpose_b, M, N, K, T(alpha), a.data<T>(), matrix_cols(a), b.data<T>(), matrix_cols(b), T(beta),
         out.data<T>(), N);
  });
}

void add(Tensor out, const Tensor& a, const Tensor& b) {
  T6_CUDA_TWIN(out, add(out, a, b));
  require_same_shape("add", out, a);
  require_same_shape("add", out, b);
  for_float_type("add", {&out, &a, &b}, [&](auto zero) {
    using T = decltype(zero);
    T* o = out.data<T>();
    const T *x = a.data<T>(), *y = b.data<T>();
    const int64_t n = out.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
  });
}

double sum_of_squares(const Tensor& x) {
  T6_CUDA_TWIN(x, sum_of_squares(x));
  double total = 0;
  for_float_type("sum_of_squares", {&x}, [&](auto zero) {
    using T = decltype(zero);
    const T* data = x.data<T>();
    const int64_t n = x.numel();
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t i = 0; i < n; ++i) total += double(data[i]) * double(data[i]);
  });
  return total;
}

void fill_zero(Tensor x) {
  T6_CUDA_TWIN(x, fill_zero(x));
  for_float_type("fill_zero", {&x}, [&](auto zero) {
    using T = decltype(zero);
    T* data = x.data<T>();
    const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) data[i] = T(0);
  });
}

}  // namespace t6::ops
