#include <cmath>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void swiglu_forward(Tensor out, const Tensor& a, const Tensor& b) {
  T6_CUDA_TWIN(out, swiglu_forward(out, a, b));
  require_same_shape("swiglu_forward", out, a);
  require_same_shape("swiglu_forward", out, b);
  for_float_type(t6_twin_routed, "swiglu_forward", {&out, &a, &b}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = out.numel();
    const T *x = a.data<T>(), *gate = b.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] / (T(1) + std::exp(-x[i])) * gate[i];
  });
}

void swiglu_backward(Tensor da, Tensor db, const Tensor& dout, const Tensor& a, const Tensor& b) {
  T6_CUDA_TWIN(da, swiglu_backward(da, db, dout, a, b));
  require_same_shape("swiglu_backward", da, a);
  require_same_shape("swiglu_backward", db, b);
  require_same_shape("swiglu_backward", dout, a);
  for_float_type(t6_twin_routed, "swiglu_backward", {&da, &db, &dout, &a, &b}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = a.numel();
    const T *x = a.data<T>(), *gate = b.data<T>(), *g = dout.data<T>();
    T *dx = da.data<T>(), *dgate = db.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T sigmoid = T(1) / (T(1) + std::exp(-x[i]));
      dgate[i] = g[i] * x[i] * sigmoid;
      dx[i] = g[i] * gate[i] * sigmoid * (T(1) + x[i] * (T(1) - sigmoid));
    }
  });
}

}  // namespace t6::ops
