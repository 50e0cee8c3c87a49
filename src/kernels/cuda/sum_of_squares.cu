// Σ x² for the gradient norm, deterministic: a fixed grid of blocks each sums a fixed strided
// subset in double, then one block adds the blocks' partial sums in block order. No atomics, so the
// same tensor gives the same bits on every run (exact resume and repeatable runs need that).
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kBlocks = 528;  // 4 per multiprocessor of an H100/H200; fixed so the order is too

__global__ void partial_sums_kernel(FloatRef x, int64_t n, double* partials) {
  double sum = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double value = x.load(i);
    sum += value * value;
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void total_kernel(const double* partials, int count, double* total) {
  double sum = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace

double sum_of_squares(const Tensor& x) {
  const FloatRef values = float_ref("sum_of_squares", x);
  CudaContext& context = cuda_context();
  double* partials = static_cast<double*>(context.scratch((kBlocks + 1) * sizeof(double)));
  T6_LAUNCH(partial_sums_kernel, kBlocks, kThreads, 0, context.stream())(values, x.numel(), partials);
  T6_CUDA_CHECK_LAUNCH("partial_sums_kernel");
  T6_LAUNCH(total_kernel, 1, kThreads, 0, context.stream())(partials, kBlocks, partials + kBlocks);
  T6_CUDA_CHECK_LAUNCH("total_kernel");
  double total = 0;
  T6_CUDA_CHECK(cudaMemcpyAsync(&total, partials + kBlocks, sizeof(double), cudaMemcpyDeviceToHost, context.stream()));
  T6_CUDA_CHECK(cudaStreamSynchronize(context.stream()));
  return total;
}

}  // namespace t6::ops::cuda
