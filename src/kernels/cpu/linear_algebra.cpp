// matmul through BLAS (OpenBLAS), and the element-wise helpers.
#include <cmath>

#include "core/bf16.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;


void matmul(Tensor out, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, float alpha, float beta) {
  T6_CUDA_TWIN(out, matmul(out, a, b, transpose_a, transpose_b, alpha, beta));
  for_float_type(t6_twin_routed, "matmul", {&out, &a, &b}, [&](auto zero) {
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
  for_float_type(t6_twin_routed, "add", {&out, &a, &b}, [&](auto zero) {
    using T = decltype(zero);
    T* o = out.data<T>();
    const T *x = a.data<T>(), *y = b.data<T>();
    const int64_t n = out.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
  });
}

double sum_of_squares(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return 0;
  T6_CUDA_TWIN(tensors.front(), sum_of_squares(tensors));
  double statistics[2] = {0, 0};
  tensor_list_statistics(Tensor(statistics, {2}, DType::F64), tensors);
  return statistics[0];
}

void fill_zero(Tensor x) {
  T6_CUDA_TWIN(x, fill_zero(x));
  for_float_type(t6_twin_routed, "fill_zero", {&x}, [&](auto zero) {
    using T = decltype(zero);
    T* data = x.data<T>();
    const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) data[i] = T(0);
  });
}

void cast(Tensor out, const Tensor& x) {
  T6_CUDA_TWIN(out, cast(out, x));
  require_same_shape("cast", out, x);
  require_host(t6_twin_routed, "cast", {&out, &x});
  const int64_t n = x.numel();
  // Each element through double: exact for F32 and F64 sources, then rounded once to out's type.
  const auto load = [&](int64_t i) {
    if (x.dtype() == DType::F32) return double(x.data<float>()[i]);
    T6_CHECK(x.dtype() == DType::F64, "cast: the CPU backend casts from F32 or F64, got ", dtype_name(x.dtype()));
    return x.data<double>()[i];
  };
  if (out.dtype() == DType::BF16) {
    T6_CHECK(x.dtype() == DType::F32, "cast: bf16 is made from F32, got ", dtype_name(x.dtype()));
    uint16_t* bits = static_cast<uint16_t*>(out.raw());
    for (int64_t i = 0; i < n; ++i) bits[i] = float_to_bf16_bits(x.data<float>()[i]);
  } else if (out.dtype() == DType::F32) {
    for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = float(load(i));
  } else {
    T6_CHECK(out.dtype() == DType::F64, "cast: the CPU backend casts to F32, F64 or BF16, got ", dtype_name(out.dtype()));
    for (int64_t i = 0; i < n; ++i) out.data<double>()[i] = load(i);
  }
}

void tensor_list_statistics(Tensor statistics, const std::vector<Tensor>& tensors) {
  T6_CUDA_TWIN(statistics, tensor_list_statistics(statistics, tensors));
  T6_CHECK(statistics.dtype() == DType::F64 && statistics.numel() == 2,
           "tensor_list_statistics: statistics must be F64 with 2 elements, got ", statistics.shape().to_string(), " ",
           dtype_name(statistics.dtype()));
  require_host(t6_twin_routed, "tensor_list_statistics", {&statistics});
  double squares = 0;
  int64_t non_finite = 0;
  for (const Tensor& x : tensors) {
    require_host(t6_twin_routed, "tensor_list_statistics", {&x});
    // Each tensor's sum starts from 0 and joins the total afterwards, in list order: OpenMP adds its
    // threads' partials to the reduction variable in the order they finish, which would make the
    // total's rounding vary from run to run if the variable already held the earlier tensors' sum.
    double tensor_squares = 0;
    const auto count = [&](const auto* data) {
      const int64_t n = x.numel();
#pragma omp parallel for reduction(+ : tensor_squares, non_finite) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const double value = data[i];
        tensor_squares += value * value;
        non_finite += std::isfinite(value) ? 0 : 1;
      }
    };
    if (x.dtype() == DType::F32) count(x.data<float>());
    else if (x.dtype() == DType::F64) count(x.data<double>());
    else fail(str("tensor_list_statistics: the CPU backend takes F32 or F64 tensors, got ", dtype_name(x.dtype())));
    squares += tensor_squares;
  }
  statistics.data<double>()[0] = squares;
  statistics.data<double>()[1] = double(non_finite);
}

}  // namespace t6::ops
