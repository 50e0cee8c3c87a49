// Element-wise ops on the GPU: add, fill_zero, SwiGLU forward and backward (fp32 arithmetic).
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void add_kernel(FloatRef out, FloatRef a, FloatRef b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out.store(i, a.load(i) + b.load(i));
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void swiglu_forward_kernel(FloatRef out, FloatRef a, FloatRef b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = a.load(i);
    out.store(i, x * sigmoid(x) * b.load(i));
  }
}

__global__ void swiglu_backward_kernel(FloatRef da, FloatRef db, FloatRef dout, FloatRef a, FloatRef b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = a.load(i), gate = b.load(i), g = dout.load(i), s = sigmoid(x);
    db.store(i, g * x * s);
    da.store(i, g * gate * s * (1.0f + x * (1.0f - s)));
  }
}

}  // namespace

void add(Tensor out, const Tensor& a, const Tensor& b) {
  require_same_shape("add", out, a);
  require_same_shape("add", out, b);
  const int64_t n = out.numel();
  T6_LAUNCH(add_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(float_ref("add", out), float_ref("add", a),
                                                                              float_ref("add", b), n);
  T6_CUDA_CHECK_LAUNCH("add_kernel");
}

void fill_zero(Tensor x) {
  float_ref("fill_zero", x);
  T6_CUDA_CHECK(cudaMemsetAsync(x.raw(), 0, x.bytes(), cuda_context().stream()));  // +0.0 in fp32 and bf16
}

void swiglu_forward(Tensor out, const Tensor& a, const Tensor& b) {
  require_same_shape("swiglu_forward", out, a);
  require_same_shape("swiglu_forward", out, b);
  const int64_t n = out.numel();
  T6_LAUNCH(swiglu_forward_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(
      float_ref("swiglu_forward", out), float_ref("swiglu_forward", a), float_ref("swiglu_forward", b), n);
  T6_CUDA_CHECK_LAUNCH("swiglu_forward_kernel");
}

void swiglu_backward(Tensor da, Tensor db, const Tensor& dout, const Tensor& a, const Tensor& b) {
  require_same_shape("swiglu_backward", da, a);
  require_same_shape("swiglu_backward", db, b);
  require_same_shape("swiglu_backward", dout, a);
  const int64_t n = a.numel();
  const char* op = "swiglu_backward";
  T6_LAUNCH(swiglu_backward_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(
      float_ref(op, da), float_ref(op, db), float_ref(op, dout), float_ref(op, a), float_ref(op, b), n);
  T6_CUDA_CHECK_LAUNCH("swiglu_backward_kernel");
}

}  // namespace t6::ops::cuda
