// RMSNorm without weight on the GPU: one block per row, fp32 statistics (rstd kept in fp32 for
// backward), the row's sums in a fixed order (block_reduce.cuh).
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_forward_kernel(FloatRef out, float* rstd, FloatRef x, int64_t d, float eps) {
  const int64_t row = blockIdx.x * d;
  float sum = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float value = x.load(row + j);
    sum += value * value;
  }
  const float inv = rsqrtf(block_sum(sum) / float(d) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) out.store(row + j, x.load(row + j) * inv);
}

__global__ void rmsnorm_backward_kernel(FloatRef dx, FloatRef dout, FloatRef x, const float* rstd, int64_t d) {
  const int64_t row = blockIdx.x * d;
  const float inv = rstd[blockIdx.x];
  float dot = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dot += dout.load(row + j) * x.load(row + j);
  const float correction = block_sum(dot) * inv * inv / float(d);
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    dx.store(row + j, dx.load(row + j) + inv * (dout.load(row + j) - x.load(row + j) * correction));
}

void require_rstd(const char* op, const Tensor& rstd, int64_t rows) {
  require_device(op, {&rstd});
  T6_CHECK(rstd.dtype() == DType::F32 && rstd.numel() == rows, op, ": rstd must be F32 with one element per row");
}

}  // namespace

void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x) {
  const char* op = "rmsnorm_forward";
  require_same_shape(op, out, x);
  const int64_t rows = matrix_rows(x);
  require_rstd(op, rstd, rows);
  if (rows == 0) return;
  T6_LAUNCH(rmsnorm_forward_kernel, unsigned(rows), kThreads, 0, cuda_context().stream())(
      float_ref(op, out), rstd.data<float>(), float_ref(op, x), matrix_cols(x), float(kRmsNormEps));
  T6_CUDA_CHECK_LAUNCH("rmsnorm_forward_kernel");
}

void rmsnorm_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd) {
  const char* op = "rmsnorm_backward";
  require_same_shape(op, dx, x);
  require_same_shape(op, dout, x);
  const int64_t rows = matrix_rows(x);
  require_rstd(op, rstd, rows);
  if (rows == 0) return;
  T6_LAUNCH(rmsnorm_backward_kernel, unsigned(rows), kThreads, 0, cuda_context().stream())(
      float_ref(op, dx), float_ref(op, dout), float_ref(op, x), rstd.data<float>(), matrix_cols(x));
  T6_CUDA_CHECK_LAUNCH("rmsnorm_backward_kernel");
}

}  // namespace t6::ops::cuda
