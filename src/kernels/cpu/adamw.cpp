#include <cmath>

#include "core/bf16.h"

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWStep& hyper, Tensor param_bf16) {
  T6_CUDA_TWIN(param, adamw_update(param, grad, m, v, hyper, param_bf16));
  require_same_shape("adamw_update", param, grad);
  require_same_shape("adamw_update", param, m);
  require_same_shape("adamw_update", param, v);
  if (!param_bf16.empty()) {
    require_same_shape("adamw_update", param, param_bf16);
    require_host(t6_twin_routed, "adamw_update", {&param_bf16});
    T6_CHECK(param_bf16.dtype() == DType::BF16, "adamw_update: the bf16 copy must be BF16, got ",
             dtype_name(param_bf16.dtype()));
  }
  for_float_type(t6_twin_routed, "adamw_update", {&param, &grad, &m, &v}, [&](auto zero) {
    using T = decltype(zero);
    // The order of torch.optim.AdamW (single-tensor path): decay, moments, bias-corrected step.
    const T decay = T(1) - T(hyper.lr) * T(hyper.weight_decay);
    const T beta1 = hyper.beta1, beta2 = hyper.beta2;
    const T step_size = T(hyper.lr) / (T(1) - std::pow(beta1, T(hyper.step)));
    const T bias_correction2_sqrt = std::sqrt(T(1) - std::pow(beta2, T(hyper.step)));
    const T grad_scale = hyper.grad_scale, eps = hyper.eps;
    T *p = param.data<T>(), *m1 = m.data<T>(), *m2 = v.data<T>();
    const T* g = grad.data<T>();
    const int64_t n = param.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T gi = g[i] * grad_scale;
      p[i] *= decay;
      m1[i] += (gi - m1[i]) * (T(1) - beta1);
      m2[i] = m2[i] * beta2 + (T(1) - beta2) * gi * gi;
      p[i] -= step_size * (m1[i] / (std::sqrt(m2[i]) / bias_correction2_sqrt + eps));
    }
    if (!param_bf16.empty()) {
      uint16_t* copy = param_bf16.data<uint16_t>();
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; ++i) copy[i] = float_to_bf16_bits(float(p[i]));
    }
  });
}

}  // namespace t6::ops
