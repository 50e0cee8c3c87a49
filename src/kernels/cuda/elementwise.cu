// Element-wise ops on the GPU: add, fill_zero, cast, SwiGLU forward and backward (fp32 arithmetic).
// Every tensor is checked (float_ref may throw) into a local before the launch line, so an error
// never leaves a launch half made.
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

// FloatRef's store rounds to nearest even in a bf16 destination: the fp32 → bf16 cast.
__global__ void cast_kernel(FloatRef out, FloatRef x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out.store(i, x.load(i));
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
  const char* op = "add";
  require_same_shape(op, out, a);
  require_same_shape(op, out, b);
  const FloatRef sum = float_ref(op, out), left = float_ref(op, a), right = float_ref(op, b);
  // The residual stream and gradients accumulate through add: a bf16 sum would drop small terms.
  T6_CHECK(!sum.bf16, op, ": the sum must be F32 (fp32 accumulation), got a BF16 output");
  const int64_t n = out.numel();
  T6_LAUNCH(add_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(sum, left, right, n);
  T6_CUDA_CHECK_LAUNCH("add_kernel");
}

void fill_zero(Tensor x) {
  float_ref("fill_zero", x);
  T6_CUDA_CHECK(cudaMemsetAsync(x.raw(), 0, x.bytes(), cuda_context().stream()));  // +0.0 in fp32 and bf16
}

void cast(Tensor out, const Tensor& x) {
  const char* op = "cast";
  require_same_shape(op, out, x);
  const FloatRef destination = float_ref(op, out), source = float_ref(op, x);
  const int64_t n = out.numel();
  if (n == 0) return;
  T6_LAUNCH(cast_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(destination, source, n);
  T6_CUDA_CHECK_LAUNCH("cast_kernel");
}

void swiglu_forward(Tensor out, const Tensor& a, const Tensor& b) {
  const char* op = "swiglu_forward";
  require_same_shape(op, out, a);
  require_same_shape(op, out, b);
  const FloatRef result = float_ref(op, out), gate_input = float_ref(op, a), up = float_ref(op, b);
  const int64_t n = out.numel();
  T6_LAUNCH(swiglu_forward_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(result, gate_input, up, n);
  T6_CUDA_CHECK_LAUNCH("swiglu_forward_kernel");
}

void swiglu_backward(Tensor da, Tensor db, const Tensor& dout, const Tensor& a, const Tensor& b) {
  const char* op = "swiglu_backward";
  require_same_shape(op, da, a);
  require_same_shape(op, db, b);
  require_same_shape(op, dout, a);
  const FloatRef gate_gradient = float_ref(op, da), up_gradient = float_ref(op, db), incoming = float_ref(op, dout);
  const FloatRef gate_input = float_ref(op, a), up = float_ref(op, b);
  const int64_t n = a.numel();
  T6_LAUNCH(swiglu_backward_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(
      gate_gradient, up_gradient, incoming, gate_input, up, n);
  T6_CUDA_CHECK_LAUNCH("swiglu_backward_kernel");
}

}  // namespace t6::ops::cuda
