// Helpers shared by the CPU ops: hand tensors on a GPU to the op's CUDA twin, run a templated body
// for the tensors' float type (fp32 for the model, fp64 for finite-difference tests), and refuse
// tensors that live on another device.
#pragma once
#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/shape_checks.h"

// The first line of every op: where `probe` (the op's main output) lives on a GPU, the op is its
// CUDA twin of kernels/cuda/cuda_ops.h, e.g. T6_CUDA_TWIN(out, add(out, a, b)).
// A missing twin is a build error, never a failure at run time:
//   - the line declares `t6_twin_routed`, the TwinRouted token that the CPU bodies below
//     (for_float_type, require_host) take, so an op that reads tensors without a T6_CUDA_TWIN line
//     does not compile (in every build);
//   - in a CUDA build (nvcc or emulated) the line calls ::t6::ops::cuda::<op>, so a twin that
//     cuda_ops.h does not declare does not compile, and one that no .cu file defines does not link.
// Without CUDA there are no device tensors, and require_host refuses any that claim to be one.
#ifdef T6_WITH_CUDA
#include "kernels/cuda/cuda_ops.h"
#define T6_CUDA_TWIN(probe, call)                                          \
  [[maybe_unused]] const ::t6::ops::cpu::TwinRouted t6_twin_routed{};      \
  if ((probe).device() == ::t6::Device::CUDA) return ::t6::ops::cuda::call
#else
#define T6_CUDA_TWIN(probe, call) [[maybe_unused]] const ::t6::ops::cpu::TwinRouted t6_twin_routed {}
#endif

namespace t6::ops::cpu {

// What T6_CUDA_TWIN leaves behind: the op has handed device tensors to its twin. Only that macro
// makes one, so that the CPU bodies can require it.
struct TwinRouted {};

inline void require_host(TwinRouted, const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* tensor : tensors)
    T6_CHECK(tensor->device() == Device::CPU, op, ": the CPU backend got a device tensor");
}

// Calls body(float{}) or body(double{}) after checking that every tensor has that element type.
template <class Body>
void for_float_type(TwinRouted routed, const char* op, std::initializer_list<const Tensor*> tensors, Body&& body) {
  require_host(routed, op, tensors);
  const DType dtype = (*tensors.begin())->dtype();
  for (const Tensor* tensor : tensors)
    T6_CHECK(tensor->dtype() == dtype, op, ": mixed element types ", dtype_name(dtype), " and ", dtype_name(tensor->dtype()));
  if (dtype == DType::F32) {
    body(float{});
  } else if (dtype == DType::F64) {
    body(double{});
  } else {
    fail(str(op, ": the CPU backend takes F32 or F64 tensors, got ", dtype_name(dtype)));
  }
}

}  // namespace t6::ops::cpu
