// What the CUDA kernels see of a Tensor: a pointer and whether its elements are bf16 or fp32
// (FloatRef; loads and stores in fp32 whatever the storage), and the host-side checks that every
// tensor of an op is on the GPU with an element type the op takes. Reading the element type at run
// time keeps one kernel per op instead of one per type combination (CI compiles on 2 cores); the
// branch is uniform across a warp.
#pragma once
#include <cuda_bf16.h>

#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/shape_checks.h"

namespace t6::ops::cuda {

struct FloatRef {
  void* data;
  bool bf16;

  __device__ __forceinline__ float load(int64_t i) const {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]) : static_cast<const float*>(data)[i];
  }
  __device__ __forceinline__ void store(int64_t i, float value) const {
    if (bf16) static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16(value);
    else static_cast<float*>(data)[i] = value;
  }
};

inline void require_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* tensor : tensors)
    T6_CHECK(tensor->device() == Device::CUDA, op, ": a tensor on the CPU was mixed with tensors on the GPU");
}

inline FloatRef float_ref(const char* op, const Tensor& tensor) {
  require_device(op, {&tensor});
  T6_CHECK(tensor.dtype() == DType::F32 || tensor.dtype() == DType::BF16, op,
           ": the CUDA backend takes F32 or BF16 tensors here, got ", dtype_name(tensor.dtype()));
  return {tensor.raw(), tensor.dtype() == DType::BF16};
}

inline const int32_t* token_ids(const char* op, const Tensor& tokens, int64_t rows) {
  require_device(op, {&tokens});
  T6_CHECK(tokens.dtype() == DType::I32 && tokens.numel() == rows, op, ": expected ", rows, " I32 token ids, got ",
           tokens.numel(), " ", dtype_name(tokens.dtype()));
  return tokens.data<int32_t>();
}

// Blocks for a grid-stride loop over n elements with `threads` per block.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 1 ? 1 : (blocks > 65535 * 4 ? 65535 * 4 : blocks));
}

}  // namespace t6::ops::cuda
