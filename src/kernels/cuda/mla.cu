// MLA's keys and values from the expanded latent on the GPU (ops.h, mla_split_kv_forward): pure
// copies, one thread per output element; the backward's dk_pe sums the heads' rotated key
// gradients in head order, one thread per (row, column), so it repeats bit for bit.
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;

// k (N, H, Dn + Dr) = [kv[·, :Dn], k_pe] and v (N, H, Dv) = kv[·, Dn:], one element of k or v each.
__global__ void split_kv_forward_kernel(FloatRef k, FloatRef v, FloatRef kv, FloatRef k_pe, SplitKvDims s) {
  const int64_t Dk = s.Dn + s.Dr, k_elements = s.N * s.H * Dk, total = k_elements + s.N * s.H * s.Dv;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    if (e < k_elements) {
      const int64_t head_row = e / Dk, j = e % Dk;
      k.store(e, j < s.Dn ? kv.load(head_row * (s.Dn + s.Dv) + j) : k_pe.load(head_row / s.H * s.Dr + j - s.Dn));
    } else {
      const int64_t i = e - k_elements, head_row = i / s.Dv, j = i % s.Dv;
      v.store(i, kv.load(head_row * (s.Dn + s.Dv) + s.Dn + j));
    }
  }
}

// dkv = [dk[·, :Dn], dv] per head, one element of dkv each; dk_pe (N, Dr) = Σ_h dk[n, h, Dn:].
__global__ void split_kv_backward_kernel(FloatRef dkv, FloatRef dk_pe, FloatRef dk, FloatRef dv, SplitKvDims s) {
  const int64_t Dk = s.Dn + s.Dr, width = s.Dn + s.Dv, kv_elements = s.N * s.H * width, total = kv_elements + s.N * s.Dr;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    if (e < kv_elements) {
      const int64_t head_row = e / width, j = e % width;
      dkv.store(e, j < s.Dn ? dk.load(head_row * Dk + j) : dv.load(head_row * s.Dv + j - s.Dn));
    } else {
      const int64_t i = e - kv_elements, n = i / s.Dr, j = i % s.Dr;
      float sum = 0;
      for (int64_t h = 0; h < s.H; ++h) sum += dk.load((n * s.H + h) * Dk + s.Dn + j);
      dk_pe.store(i, sum);
    }
  }
}

}  // namespace

void mla_split_kv_forward(Tensor k, Tensor v, const Tensor& kv, const Tensor& k_pe) {
  const char* op = "mla_split_kv_forward";
  const SplitKvDims s = check_mla_split_kv(op, k, v, kv, k_pe);
  const FloatRef keys = float_ref(op, k), values = float_ref(op, v), latent = float_ref(op, kv), shared = float_ref(op, k_pe);
  const int64_t total = s.N * s.H * (s.Dn + s.Dr + s.Dv);
  if (total == 0) return;
  T6_LAUNCH(split_kv_forward_kernel, grid_for(total, kThreads), kThreads, 0, cuda_context().stream())(keys, values, latent,
                                                                                                      shared, s);
  T6_CUDA_CHECK_LAUNCH("split_kv_forward_kernel");
}

void mla_split_kv_backward(Tensor dkv, Tensor dk_pe, const Tensor& dk, const Tensor& dv) {
  const char* op = "mla_split_kv_backward";
  const SplitKvDims s = check_mla_split_kv(op, dk, dv, dkv, dk_pe);
  const FloatRef dlatent = float_ref(op, dkv), dshared = float_ref(op, dk_pe);
  const FloatRef dkeys = float_ref(op, dk), dvalues = float_ref(op, dv);
  const int64_t total = s.N * s.H * (s.Dn + s.Dv) + s.N * s.Dr;
  if (total == 0) return;
  T6_LAUNCH(split_kv_backward_kernel, grid_for(total, kThreads), kThreads, 0, cuda_context().stream())(
      dlatent, dshared, dkeys, dvalues, s);
  T6_CUDA_CHECK_LAUNCH("split_kv_backward_kernel");
}

}  // namespace t6::ops::cuda
