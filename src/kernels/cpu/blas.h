// Row-major GEMM on host memory through CBLAS, one overload per float type, so templated CPU ops
// (fp32 for the model, fp64 for finite-difference tests) call BLAS the same way.
#pragma once
#include <cblas.h>

#include <cstdint>

namespace t6::ops::cpu {

// c (M, N) = alpha · op(a) · op(b) + beta · c, leading dimensions as stored.
inline void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace t6::ops::cpu
