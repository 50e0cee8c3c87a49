// The step scalars on the CPU: sums in double, in index order, and plain copies.
#include <cstring>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {

double* checked_total(const char* op, const Tensor& total) {
  T6_CHECK(total.dtype() == DType::F64 && total.numel() == 1, op, ": the total must be one F64 element, got ",
           dtype_name(total.dtype()), " ", total.shape().to_string());
  return total.data<double>();
}

// Σ f(x_i) in double, in index order.
template <class F>
double ordered_sum(TwinRouted routed, const char* op, const Tensor& x, F f) {
  double sum = 0;
  if (x.numel() == 0) return sum;
  for_float_type(routed, op, {&x}, [&](auto zero) {
    using T = decltype(zero);
    const T* data = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) sum += f(double(data[i]));
  });
  return sum;
}

}  // namespace

void sum_into(Tensor total, const Tensor& x, double scale, bool accumulate) {
  T6_CUDA_TWIN(total, sum_into(total, x, scale, accumulate));
  require_host(t6_twin_routed, "sum_into", {&total, &x});
  double* out = checked_total("sum_into", total);
  const double sum = scale * ordered_sum(t6_twin_routed, "sum_into", x, [](double v) { return v; });
  *out = accumulate ? *out + sum : sum;
}

void copy(Tensor dst, const Tensor& src) {
  T6_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(), "copy: ", dtype_name(src.dtype()), " ",
           src.shape().to_string(), " does not fit ", dtype_name(dst.dtype()), " ", dst.shape().to_string());
  // Either side on a GPU makes it the twin's copy (host to device, device to host or on the device).
  T6_CUDA_TWIN(dst.device() == Device::CUDA ? dst : src, copy(dst, src));
  require_host(t6_twin_routed, "copy", {&dst, &src});
  if (src.bytes() > 0) std::memmove(dst.raw(), src.raw(), src.bytes());
}

void wait_for_ops(Device device) {
#ifdef T6_WITH_CUDA
  if (device == Device::CUDA) cuda::wait_for_ops();
#else
  T6_CHECK(device == Device::CPU, "wait_for_ops: this t6 was built without CUDA");
#endif
}

}  // namespace t6::ops
