// Row-major GEMM on host memory through CBLAS, one overload per float type, so templated CPU ops
// (fp32 for the model, fp64 for finite-difference tests) call BLAS the same way.
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cstdint>

namespace t6::ops::cpu {

// c (M, N) = alpha · op(a) · op(b) + beta · c, leading dimensions as stored.
// One row (a decode step at batch 1) goes to GEMV: OpenBLAS's SGEMM would first copy all of b into
// its packed layout, reading and writing the weights once more than the product needs (bench_decode
// at 1 × 32K spent a quarter of its time in that copy). beta = 0 never reads c, as for SGEMM.
inline void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (M == 1) {
    if (beta == 0.0f) std::fill(c, c + N, 0.0f);
    cblas_sgemv(CblasRowMajor, transpose_b ? CblasNoTrans : CblasTrans, transpose_b ? N : K, transpose_b ? K : N,
                alpha, b, ldb, a, transpose_a ? lda : 1, beta, c, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace t6::ops::cpu
