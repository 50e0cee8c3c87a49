// RoPE on the GPU, in place on the last columns of each row of (B, T, R, W): one thread per rotated pair. The tables are the
// reference's bf16-rounded values (made on the host by the CPU op, then copied), F32 or BF16.
#include <vector>

#include "core/bf16.h"
#include "core/device_memory.h"
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

// sign +1: y1 = x1·c + x2·s, y2 = −x1·s + x2·c (forward); sign −1: the transpose (backward).
__global__ void rope_kernel(FloatRef x, FloatRef cos, FloatRef sin, int64_t T, int64_t R, int64_t width,
                            int64_t first_column, int64_t half, int64_t pairs, float sign) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < pairs; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = p % half, row = p / half;  // row = (b·T + t)·R + r
    const int64_t t = (row / R) % T;
    const int64_t first = row * width + first_column + i, second = first + half;
    const float x1 = x.load(first), x2 = x.load(second);
    const float c = cos.load(t * half + i), s = sin.load(t * half + i);
    x.store(first, x1 * c + sign * x2 * s);
    x.store(second, -sign * x1 * s + x2 * c);
  }
}

void rotate(const char* op, Tensor x, const Tensor& cos, const Tensor& sin, int64_t first_column, float sign) {
  T6_CHECK(x.ndim() == 4, op, ": expected a (B, T, R, D) tensor, got ", x.shape().to_string());
  const int64_t T = x.size(1), R = x.size(2), width = x.size(3), half = (width - first_column) / 2;
  T6_CHECK(first_column >= 0 && first_column < width, op, ": first rotated column ", first_column,
           " is outside rows of ", width);
  T6_CHECK(cos.ndim() == 2 && cos.size(0) >= T && 2 * cos.size(1) == width - first_column && sin.shape() == cos.shape(),
           op, ": tables ", cos.shape().to_string(), " do not cover sequence length ", T, " and rotary dim ",
           width - first_column);
  const int64_t pairs = x.numel() / width * half;
  if (pairs == 0) return;
  T6_LAUNCH(rope_kernel, grid_for(pairs, 256), 256, 0, cuda_context().stream())(float_ref(op, x), float_ref(op, cos),
                                                                         float_ref(op, sin), T, R, width, first_column,
                                                                         half, pairs, sign);
  T6_CUDA_CHECK_LAUNCH("rope_kernel");
}

}  // namespace

void rope_tables(Tensor cos, Tensor sin) {
  require_same_shape("rope_tables", cos, sin);
  float_ref("rope_tables", cos);
  float_ref("rope_tables", sin);
  HostTensor host_cos(cos.shape(), DType::F32), host_sin(sin.shape(), DType::F32);
  ops::rope_tables(host_cos.view(), host_sin.view());  // the CPU op: one definition of the values
  for (auto [host, device] : {std::pair<const HostTensor*, Tensor*>{&host_cos, &cos}, {&host_sin, &sin}}) {
    if (device->dtype() == DType::F32) {
      copy_tensor(*device, host->view());
    } else {
      std::vector<uint16_t> bits(size_t(host->numel()));
      for (size_t i = 0; i < bits.size(); ++i) bits[i] = float_to_bf16_bits(host->data<float>()[i]);
      copy_tensor(*device, Tensor(bits.data(), device->shape(), DType::BF16));
    }
  }
}

void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t first_column) {
  rotate("rope_forward", x, cos, sin, first_column, 1.0f);
}

void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t first_column) {
  rotate("rope_backward", dx, cos, sin, first_column, -1.0f);
}

}  // namespace t6::ops::cuda
