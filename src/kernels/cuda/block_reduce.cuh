// Deterministic block-wide reductions: warp shuffles, then the warps' results in warp order, so a
// row's sum is computed in the same order on every run (no atomics). Every thread of the block must
// call them; every thread gets the result.
#pragma once
#include <cfloat>

namespace t6::ops::cuda {

template <class T, class Combine>
__device__ __forceinline__ T block_reduce(T value, Combine combine, T identity) {
  __shared__ T warp_results[32];
  for (int offset = 16; offset > 0; offset /= 2) value = combine(value, __shfl_xor_sync(0xffffffffu, value, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  __syncthreads();  // warp_results may still be read by a previous call
  if (lane == 0) warp_results[warp] = value;
  __syncthreads();
  T total = identity;
  for (int w = 0; w < warps; ++w) total = combine(total, warp_results[w]);
  return total;
}

struct SumOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a > b ? a : b; }
};

__device__ __forceinline__ float block_sum(float value) { return block_reduce(value, SumOp{}, 0.0f); }
__device__ __forceinline__ double block_sum(double value) { return block_reduce(value, SumOp{}, 0.0); }
__device__ __forceinline__ float block_max(float value) { return block_reduce(value, MaxOp{}, -FLT_MAX); }

}  // namespace t6::ops::cuda
