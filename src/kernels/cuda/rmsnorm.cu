// RMSNorm on the GPU, without a weight (the blocks' norms) and with one (MLA's latent norms): one
// block per row, fp32 statistics (rstd kept in fp32 for backward), the row's sums in a fixed order
// (block_reduce.cuh). The weight gradient sums over rows with one thread per column, rows in order,
// so it needs no atomics and repeats bit for bit. Gradients accumulate (dx +=, dweight +=), so
// they must be F32: a bf16 accumulation target is refused.
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

// The learned weight, or none (data null): the factor of column j.
struct OptionalWeight {
  FloatRef weight;
  __device__ __forceinline__ float at(int64_t j) const { return weight.data ? weight.load(j) : 1.0f; }
};

// out = (x · rstd) ⊙ weight: as the CPU twin, the normalised value is rounded to fp32 before the
// weight multiplies it.
__global__ void rmsnorm_forward_kernel(FloatRef out, float* rstd, FloatRef x, OptionalWeight weight, int64_t d,
                                       float eps) {
  const int64_t row = blockIdx.x * d;
  float sum = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float value = x.load(row + j);
    sum += value * value;
  }
  const float inv = rsqrtf(block_sum(sum) / float(d) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float normalised = x.load(row + j) * inv;
    out.store(row + j, normalised * weight.at(j));
  }
}

// dx += rstd · (g − x · rstd² · mean(g · x)) with g = dout ⊙ weight.
__global__ void rmsnorm_backward_kernel(float* dx, FloatRef dout, FloatRef x, const float* rstd, OptionalWeight weight,
                                        int64_t d) {
  const int64_t row = blockIdx.x * d;
  const float inv = rstd[blockIdx.x];
  float dot = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dot += dout.load(row + j) * weight.at(j) * x.load(row + j);
  const float correction = block_sum(dot) * inv * inv / float(d);
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    dx[row + j] += inv * (dout.load(row + j) * weight.at(j) - x.load(row + j) * correction);
}

// dweight[j] += Σ_n dout[n, j] · x[n, j] · rstd[n], rows in order.
__global__ void rmsnorm_weight_gradient_kernel(float* dweight, FloatRef dout, FloatRef x, const float* rstd, int64_t rows,
                                               int64_t d) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < d; j += int64_t(gridDim.x) * blockDim.x) {
    float sum = 0;
    for (int64_t n = 0; n < rows; ++n) sum += dout.load(n * d + j) * x.load(n * d + j) * rstd[n];
    dweight[j] += sum;
  }
}

float* checked_rstd(const char* op, const Tensor& rstd, int64_t rows) {
  require_device(op, {&rstd});
  T6_CHECK(rstd.dtype() == DType::F32 && rstd.numel() == rows, op, ": rstd must be F32 with one element per row");
  return rstd.data<float>();
}

// An fp32 gradient that the op adds to.
float* accumulation_target(const char* op, const char* name, const Tensor& gradient) {
  const FloatRef target = float_ref(op, gradient);
  T6_CHECK(!target.bf16, op, ": ", name, " accumulates (+=), so it must be F32, got BF16");
  return static_cast<float*>(target.data);
}

OptionalWeight checked_weight(const char* op, const Tensor* weight, const Tensor& x) {
  if (!weight) return {{nullptr, false}};
  T6_CHECK(weight->numel() == matrix_cols(x), op, ": weight has ", weight->numel(), " elements for rows of ",
           matrix_cols(x));
  return {float_ref(op, *weight)};
}

void forward(const char* op, Tensor out, Tensor rstd, const Tensor& x, const Tensor* weight, double eps) {
  require_same_shape(op, out, x);
  const int64_t rows = matrix_rows(x), d = matrix_cols(x);
  float* statistics = checked_rstd(op, rstd, rows);
  const FloatRef result = float_ref(op, out), input = float_ref(op, x);
  const OptionalWeight factors = checked_weight(op, weight, x);
  if (rows == 0) return;
  T6_LAUNCH(rmsnorm_forward_kernel, unsigned(rows), kThreads, 0, cuda_context().stream())(result, statistics, input,
                                                                                          factors, d, float(eps));
  T6_CUDA_CHECK_LAUNCH("rmsnorm_forward_kernel");
}

void backward(const char* op, Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd, const Tensor* weight) {
  require_same_shape(op, dx, x);
  require_same_shape(op, dout, x);
  const int64_t rows = matrix_rows(x), d = matrix_cols(x);
  const float* statistics = checked_rstd(op, rstd, rows);
  float* gradient = accumulation_target(op, "dx", dx);
  const FloatRef incoming = float_ref(op, dout), input = float_ref(op, x);
  const OptionalWeight factors = checked_weight(op, weight, x);
  if (rows == 0) return;
  T6_LAUNCH(rmsnorm_backward_kernel, unsigned(rows), kThreads, 0, cuda_context().stream())(gradient, incoming, input,
                                                                                           statistics, factors, d);
  T6_CUDA_CHECK_LAUNCH("rmsnorm_backward_kernel");
}

}  // namespace

void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x) {
  forward("rmsnorm_forward", out, rstd, x, nullptr, kRmsNormEps);
}

void rmsnorm_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd) {
  backward("rmsnorm_backward", dx, dout, x, rstd, nullptr);
}

void weighted_rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x, const Tensor& weight) {
  forward("weighted_rmsnorm_forward", out, rstd, x, &weight, kWeightedRmsNormEps);
}

void weighted_rmsnorm_backward(Tensor dx, Tensor dweight, const Tensor& dout, const Tensor& x, const Tensor& rstd,
                               const Tensor& weight) {
  const char* op = "weighted_rmsnorm_backward";
  require_same_shape(op, dweight, weight);
  float* weight_gradient = accumulation_target(op, "dweight", dweight);
  backward(op, dx, dout, x, rstd, &weight);
  const int64_t rows = matrix_rows(x), d = matrix_cols(x);
  if (rows == 0 || d == 0) return;
  const FloatRef incoming = float_ref(op, dout), input = float_ref(op, x);
  const float* statistics = rstd.data<float>();
  T6_LAUNCH(rmsnorm_weight_gradient_kernel, grid_for(d, kThreads), kThreads, 0, cuda_context().stream())(
      weight_gradient, incoming, input, statistics, rows, d);
  T6_CUDA_CHECK_LAUNCH("rmsnorm_weight_gradient_kernel");
}

}  // namespace t6::ops::cuda
