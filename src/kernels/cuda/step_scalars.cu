// The step scalars on the GPU: one block sums a tensor in double, each thread a fixed strided subset,
// then the threads in block order (block_reduce.cuh), so the same tensor gives the same bits every
// run, without atomics and without scratch memory. One block is slow for big tensors on a real GPU,
// but this runs over the loss rows of a micro-batch only (the gradient norm is
// tensor_list_statistics.cu's).
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 1024;

__global__ void sum_into_kernel(FloatRef x, int64_t n, double scale, bool accumulate, double* total) {
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += x.load(i);
  sum = block_sum(sum) * scale;
  if (threadIdx.x == 0) *total = accumulate ? *total + sum : sum;
}

}  // namespace

void sum_into(Tensor total, const Tensor& x, double scale, bool accumulate) {
  const char* op = "sum_into";
  require_device(op, {&total});
  T6_CHECK(total.dtype() == DType::F64 && total.numel() == 1, op, ": the total must be one F64 element, got ",
           dtype_name(total.dtype()), " ", total.shape().to_string());
  // An empty x still writes its total (0, or the old value), so a first call may start it.
  const FloatRef values = x.numel() > 0 ? float_ref(op, x) : FloatRef{nullptr, false};
  T6_LAUNCH(sum_into_kernel, 1, kThreads, 0, cuda_context().stream())(values, x.numel(), scale, accumulate,
                                                                       total.data<double>());
  T6_CUDA_CHECK_LAUNCH("sum_into_kernel");
}

void copy(Tensor dst, const Tensor& src) {
  if (src.bytes() == 0) return;
  T6_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDefault, cuda_context().stream()));
}

void wait_for_ops() { T6_CUDA_CHECK(cudaStreamSynchronize(cuda_context().stream())); }

}  // namespace t6::ops::cuda
