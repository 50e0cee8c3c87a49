// The TPA factor → q/k/v contraction on the GPU (the materialised path: contraction, then the
// attention kernel). One block per token: its A (H, R) and B (R, D) are tiny and stay in L1, and
// every output element is one thread's own sum over R (forward, dB over H, dA over D), in a fixed
// order with no atomics.
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void contract_forward_kernel(FloatRef out, FloatRef A, FloatRef B, ContractDims s, float inv_rank) {
  const int64_t n = blockIdx.x;
  for (int64_t e = threadIdx.x; e < s.H * s.D; e += blockDim.x) {
    const int64_t h = e / s.D, j = e % s.D;
    float sum = 0;
    for (int64_t r = 0; r < s.R; ++r) sum += A.load((n * s.H + h) * s.R + r) * B.load((n * s.R + r) * s.D + j);
    out.store(n * s.H * s.D + e, sum * inv_rank);
  }
}

__global__ void contract_backward_kernel(FloatRef dA, FloatRef dB, FloatRef dout, FloatRef A, FloatRef B,
                                         ContractDims s, float inv_rank) {
  const int64_t n = blockIdx.x;
  for (int64_t e = threadIdx.x; e < s.H * s.R; e += blockDim.x) {  // dA[h, r] = Σ_j dout[h, j] · B[r, j]
    const int64_t h = e / s.R, r = e % s.R;
    float sum = 0;
    for (int64_t j = 0; j < s.D; ++j) sum += dout.load((n * s.H + h) * s.D + j) * B.load((n * s.R + r) * s.D + j);
    dA.store(n * s.H * s.R + e, sum * inv_rank);
  }
  for (int64_t e = threadIdx.x; e < s.R * s.D; e += blockDim.x) {  // dB[r, j] = Σ_h A[h, r] · dout[h, j]
    const int64_t r = e / s.D, j = e % s.D;
    float sum = 0;
    for (int64_t h = 0; h < s.H; ++h) sum += A.load((n * s.H + h) * s.R + r) * inv_rank * dout.load((n * s.H + h) * s.D + j);
    dB.store(n * s.R * s.D + e, sum);
  }
}

}  // namespace

void tpa_contract_forward(Tensor out, const Tensor& A, const Tensor& factor_B) {
  const char* op = "tpa_contract_forward";
  const ContractDims s = check_contract(op, out, A, factor_B);
  if (s.N == 0) return;
  T6_LAUNCH(contract_forward_kernel, unsigned(s.N), kThreads, 0, cuda_context().stream())(
      float_ref(op, out), float_ref(op, A), float_ref(op, factor_B), s, 1.0f / float(s.R));
  T6_CUDA_CHECK_LAUNCH("contract_forward_kernel");
}

void tpa_contract_backward(Tensor dA, Tensor dB, const Tensor& dout, const Tensor& A, const Tensor& factor_B) {
  const char* op = "tpa_contract_backward";
  require_same_shape(op, dA, A);
  require_same_shape(op, dB, factor_B);
  const ContractDims s = check_contract(op, dout, A, factor_B);
  if (s.N == 0) return;
  T6_LAUNCH(contract_backward_kernel, unsigned(s.N), kThreads, 0, cuda_context().stream())(
      float_ref(op, dA), float_ref(op, dB), float_ref(op, dout), float_ref(op, A), float_ref(op, factor_B), s,
      1.0f / float(s.R));
  T6_CUDA_CHECK_LAUNCH("contract_backward_kernel");
}

}  // namespace t6::ops::cuda
