// Causal attention backward on the GPU, deterministic (DESIGN.md): the scores are recomputed tile
// by tile from q, k and the saved log-sum-exp, and no gradient is summed with atomics.
//   Pass 1, one block per (batch, KV head, 64-key tile): dK and dV of that tile, summed over the
//     query tiles at or after it and over every query head that shares the KV head (GQA), in a
//     fixed order, in fp32 shared memory.
//   Pass 2, one block per (batch, head, 64-query tile): dQ of that tile over the key tiles up to the
//     diagonal.
// Both: P = exp(scale·q·kᵀ − lse), dS = P ⊙ (dO·vᵀ − rowsum(dO ⊙ y)) · scale, on the tensor cores.
// Shared memory: q/k tiles are D wide, v/dO tiles and dV Dv wide. Where pass 1's two fp32
// accumulators do not fit a block's opt-in shared memory (D = Dv = 192: 250 KB), it runs twice,
// once for dV and once for dK, each recomputing the tiles' P and dS (the same bits both times).
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/attention_steps.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/dynamic_shared.cuh"

namespace t6::ops::cuda {

namespace {

struct BackwardTensors {
  HeadTensor dq, dk, dv, dy, q, k, v, y;
  const float* lse;
};

// Pass 1 for the accumulators in `parts` (kDk, kDv or both).
__global__ void __launch_bounds__(kAttentionThreads) attention_dkdv_kernel(BackwardTensors t, AttentionShape shape,
                                                                            int parts) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = shape.padded_dim, stride = bf16_stride(padded_dim), acc_stride = f32_stride(padded_dim);
  const int padded_value_dim = shape.padded_value_dim, value_stride = bf16_stride(padded_value_dim);
  const int value_acc_stride = f32_stride(padded_value_dim);
  const BackwardLayout layout(padded_dim, padded_value_dim, parts);
  const BackwardRegions regions(shared, layout);
  __nv_bfloat16 *k_tile = regions.tile_a, *v_tile = regions.tile_b, *q_tile = regions.tile_c,
                *dy_tile = regions.tile_d, *P = regions.P, *dS = regions.dS;
  float *dk = regions.accumulator_k, *dv = regions.accumulator_v, *lse_rows = regions.lse_rows, *dot_rows = regions.dot_rows;
  const bool want_dk = parts & kDk, want_dv = parts & kDv;

  const int64_t k0 = int64_t(blockIdx.x) * kTile, kv = blockIdx.y, b = blockIdx.z;
  const int warp_row = (threadIdx.x / 32) * 16, d_blocks = padded_dim / 16, v_blocks = padded_value_dim / 16;
  load_tile(k_tile, t.k, b, k0, kv, padded_dim);
  load_tile(v_tile, t.v, b, k0, kv, padded_value_dim);
  if (want_dk) zero_f32_tile(dk, acc_stride, padded_dim);
  if (want_dv) zero_f32_tile(dv, value_acc_stride, padded_value_dim);
  for (int64_t h = 0; h < shape.H; ++h) {
    if (shape.kv_head(h) != kv) continue;
    for (int64_t q0 = k0; q0 < shape.T; q0 += kTile) {  // query tiles before k0 see none of these keys
      __syncthreads();
      load_tile(q_tile, t.q, b, q0, h, padded_dim);
      load_tile(dy_tile, t.dy, b, q0, h, padded_value_dim);
      load_row_statistics(lse_rows, dot_rows, t.lse, t.dy, t.y, shape, b, h, q0);
      __syncthreads();
      backward_tile_pair(regions, q_tile, k_tile, stride, d_blocks, dy_tile, v_tile, value_stride, v_blocks, q0, k0, shape);
      __syncthreads();
      // The warp's 16 key rows: dV += Pᵀ · dO, dK += dSᵀ · Q.
      if (want_dv)
        warp_accumulate_ab<wmma::col_major>(P + warp_row, kProbabilityStride, dy_tile, value_stride,
                                            dv + warp_row * value_acc_stride, value_acc_stride, v_blocks, kTile / 16);
      if (want_dk)
        warp_accumulate_ab<wmma::col_major>(dS + warp_row, kProbabilityStride, q_tile, stride, dk + warp_row * acc_stride,
                                            acc_stride, d_blocks, kTile / 16);
    }
  }
  __syncthreads();
  if (want_dk) store_tile(t.dk, dk, acc_stride, b, k0, kv);
  if (want_dv) store_tile(t.dv, dv, value_acc_stride, b, k0, kv);
}

__global__ void __launch_bounds__(kAttentionThreads) attention_dq_kernel(BackwardTensors t, AttentionShape shape,
                                                                          int parts) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = shape.padded_dim, stride = bf16_stride(padded_dim), acc_stride = f32_stride(padded_dim);
  const int padded_value_dim = shape.padded_value_dim, value_stride = bf16_stride(padded_value_dim);
  const BackwardLayout layout(padded_dim, padded_value_dim, parts);
  const BackwardRegions regions(shared, layout);
  __nv_bfloat16 *q_tile = regions.tile_a, *dy_tile = regions.tile_b, *k_tile = regions.tile_c,
                *v_tile = regions.tile_d, *dS = regions.dS;
  float *dq = regions.accumulator_k, *lse_rows = regions.lse_rows, *dot_rows = regions.dot_rows;

  const int64_t q0 = int64_t(blockIdx.x) * kTile, h = blockIdx.y, b = blockIdx.z, kv = shape.kv_head(h);
  const int warp_row = (threadIdx.x / 32) * 16, d_blocks = padded_dim / 16, v_blocks = padded_value_dim / 16;
  load_tile(q_tile, t.q, b, q0, h, padded_dim);
  load_tile(dy_tile, t.dy, b, q0, h, padded_value_dim);
  load_row_statistics(lse_rows, dot_rows, t.lse, t.dy, t.y, shape, b, h, q0);
  zero_f32_tile(dq, acc_stride, padded_dim);
  const int64_t last_key = min(q0 + kTile, shape.T);
  for (int64_t k0 = 0; k0 < last_key; k0 += kTile) {
    __syncthreads();
    load_tile(k_tile, t.k, b, k0, kv, padded_dim);
    load_tile(v_tile, t.v, b, k0, kv, padded_value_dim);
    __syncthreads();
    backward_tile_pair(regions, q_tile, k_tile, stride, d_blocks, dy_tile, v_tile, value_stride, v_blocks, q0, k0, shape);
    __syncwarp();
    warp_accumulate_ab<wmma::row_major>(dS + warp_row * kProbabilityStride, kProbabilityStride, k_tile, stride,
                                        dq + warp_row * acc_stride, acc_stride, d_blocks, kTile / 16);
  }
  __syncthreads();
  store_tile(t.dq, dq, acc_stride, b, q0, h);
}

void launch(void (*kernel)(BackwardTensors, AttentionShape, int), const char* name, dim3 grid, int parts,
            const BackwardTensors& tensors, const AttentionShape& shape) {
  const size_t shared_bytes = BackwardLayout(shape.padded_dim, shape.padded_value_dim, parts).plan.bytes;
  T6_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  T6_LAUNCH_AS(kernel, name, grid, kAttentionThreads, shared_bytes, cuda_context().stream())(tensors, shape, parts);
  T6_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& y, const Tensor& lse, HeadMap heads) {
  const char* op = "attention_backward";
  const AttentionShape shape = check_attention(op, q, k, v, y, lse, heads);
  require_same_shape(op, dq, q);
  require_same_shape(op, dk, k);
  require_same_shape(op, dv, v);
  require_same_shape(op, dy, y);
  if (shape.B * shape.T == 0) return;
  // D-wide (q, k and their gradients) and Dv-wide (v, y, dO, dV) views, checked before any launch.
  auto queries = [&](const Tensor& x, int64_t width) { return HeadTensor{float_ref(op, x), shape.T, shape.H, width}; };
  auto keys = [&](const Tensor& x, int64_t width) { return HeadTensor{float_ref(op, x), shape.T, shape.Hkv, width}; };
  const BackwardTensors tensors{queries(dq, shape.D), keys(dk, shape.D),       keys(dv, shape.Dv),
                                queries(dy, shape.Dv), queries(q, shape.D),    keys(k, shape.D),
                                keys(v, shape.Dv),     queries(y, shape.Dv),   lse.data<float>()};
  const unsigned tiles = unsigned((shape.T + kTile - 1) / kTile);
  // A KV head that no local query head maps to still gets its (zero) gradient written by pass 1.
  const dim3 key_grid(tiles, unsigned(shape.Hkv), unsigned(shape.B));
  const bool together = BackwardLayout(shape.padded_dim, shape.padded_value_dim, kDk | kDv).plan.bytes <=
                        size_t(cuda_context().shared_memory_per_block());
  if (together) {
    launch(attention_dkdv_kernel, "attention_dkdv_kernel", key_grid, kDk | kDv, tensors, shape);
  } else {
    launch(attention_dkdv_kernel, "attention_dkdv_kernel", key_grid, kDv, tensors, shape);
    launch(attention_dkdv_kernel, "attention_dkdv_kernel", key_grid, kDk, tensors, shape);
  }
  if (shape.H > 0)
    launch(attention_dq_kernel, "attention_dq_kernel", dim3(tiles, unsigned(shape.H), unsigned(shape.B)), kDq, tensors,
           shape);
}

}  // namespace t6::ops::cuda
