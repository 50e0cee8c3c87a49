// Helpers shared by the CPU ops: hand tensors on a GPU to the op's CUDA twin, run a templated body
// for the tensors' float type (fp32 for the model, fp64 for finite-difference tests), and refuse
// tensors that live on another device.
#pragma once
#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/shape_checks.h"

// The first line of every op: where `probe` (the op's main output) lives on a GPU, the op is its
// CUDA twin of kernels/cuda/cuda_ops.h, e.g. T6_CUDA_TWIN(out, add(out, a, b)). Without CUDA there
// are no device tensors, and the host checks below refuse any that claim to be one.
#ifdef T6_WITH_CUDA
#include "kernels/cuda/cuda_ops.h"
#define T6_CUDA_TWIN(probe, call) \
  if ((probe).device() == ::t6::Device::CUDA) return ::t6::ops::cuda::call
#else
#define T6_CUDA_TWIN(probe, call) static_assert(true)
#endif

namespace t6::ops::cpu {

inline void require_host(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* tensor : tensors)
    T6_CHECK(tensor->device() == Device::CPU, op, ": the CPU backend got a device tensor");
}

// Calls body(float{}) or body(double{}) after checking that every tensor has that element type.
template <class Body>
void for_float_type(const char* op, std::initializer_list<const Tensor*> tensors, Body&& body) {
  require_host(op, tensors);
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
