// AdamW on the GPU over one flat fp32 range (the optimizer keeps every parameter in one buffer, so
// one launch updates all tensors: the multi-tensor form), writing the bf16 copy of the updated
// weights that the matmuls read in the same pass. Arithmetic as the CPU twin (torch's order).
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

struct AdamWConstants {
  float decay, beta1, beta2, step_size, bias_correction2_sqrt, grad_scale, eps;
};

__global__ void adamw_kernel(float* param, FloatRef grad, float* m, float* v, __nv_bfloat16* param_bf16, int64_t n,
                             AdamWConstants c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad.load(i) * c.grad_scale;
    float p = param[i] * c.decay;
    const float m1 = m[i] + (g - m[i]) * (1.0f - c.beta1);
    const float m2 = v[i] * c.beta2 + (1.0f - c.beta2) * g * g;
    p -= c.step_size * (m1 / (sqrtf(m2) / c.bias_correction2_sqrt + c.eps));
    param[i] = p;
    m[i] = m1;
    v[i] = m2;
    if (param_bf16) param_bf16[i] = __float2bfloat16(p);
  }
}

}  // namespace

void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWStep& hyper, Tensor param_bf16) {
  const char* op = "adamw_update";
  require_same_shape(op, param, grad);
  require_same_shape(op, param, m);
  require_same_shape(op, param, v);
  require_device(op, {&param, &m, &v});
  T6_CHECK(param.dtype() == DType::F32 && m.dtype() == DType::F32 && v.dtype() == DType::F32, op,
           ": master weights and moments must be F32");
  if (!param_bf16.empty()) {
    require_same_shape(op, param, param_bf16);
    require_device(op, {&param_bf16});
    T6_CHECK(param_bf16.dtype() == DType::BF16, op, ": the bf16 copy must be BF16");
  }
  const AdamWConstants constants{1.0f - hyper.lr * hyper.weight_decay,
                                 hyper.beta1,
                                 hyper.beta2,
                                 hyper.lr / (1.0f - std::pow(hyper.beta1, float(hyper.step))),
                                 std::sqrt(1.0f - std::pow(hyper.beta2, float(hyper.step))),
                                 hyper.grad_scale,
                                 hyper.eps};
  const int64_t n = param.numel();
  T6_LAUNCH(adamw_kernel, grid_for(n, 256), 256, 0, cuda_context().stream())(
      param.data<float>(), float_ref(op, grad), m.data<float>(), v.data<float>(),
      param_bf16.empty() ? nullptr : static_cast<__nv_bfloat16*>(param_bf16.raw()), n, constants);
  T6_CUDA_CHECK_LAUNCH("adamw_kernel");
}

}  // namespace t6::ops::cuda
