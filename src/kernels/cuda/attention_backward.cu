// Causal attention backward on the GPU, deterministic (DESIGN.md): the scores are recomputed tile
// by tile from q, k and the saved log-sum-exp, and no gradient is summed with atomics.
//   Pass 1, one block per (batch, KV head, 64-key tile): dK and dV of that tile, summed over the
//     query tiles at or after it and over every query head that shares the KV head (GQA), in a
//     fixed order, in fp32 shared memory.
//   Pass 2, one block per (batch, head, 64-query tile): dQ of that tile over the key tiles up to the
//     diagonal.
// Both: P = exp(scale·q·kᵀ − lse), dS = P ⊙ (dO·vᵀ − rowsum(dO ⊙ y)) · scale, on the tensor cores.
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

__global__ void __launch_bounds__(kAttentionThreads) attention_dkdv_kernel(BackwardTensors t, AttentionShape shape) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = shape.padded_dim, stride = bf16_stride(padded_dim), acc_stride = f32_stride(padded_dim);
  const BackwardLayout layout(padded_dim, 2);
  __nv_bfloat16* k_tile = shared_region<__nv_bfloat16>(shared, layout.tile_a);
  __nv_bfloat16* v_tile = shared_region<__nv_bfloat16>(shared, layout.tile_b);
  __nv_bfloat16* q_tile = shared_region<__nv_bfloat16>(shared, layout.tile_c);
  __nv_bfloat16* dy_tile = shared_region<__nv_bfloat16>(shared, layout.tile_d);
  float* scores = shared_region<float>(shared, layout.scores);
  float* dprobabilities = shared_region<float>(shared, layout.dprobabilities);
  __nv_bfloat16* P = shared_region<__nv_bfloat16>(shared, layout.P);
  __nv_bfloat16* dS = shared_region<__nv_bfloat16>(shared, layout.dS);
  float* dk = shared_region<float>(shared, layout.accumulator_a);
  float* dv = shared_region<float>(shared, layout.accumulator_b);
  float* lse_rows = shared_region<float>(shared, layout.lse_rows);
  float* dot_rows = shared_region<float>(shared, layout.dot_rows);

  const int64_t k0 = int64_t(blockIdx.x) * kTile, kv = blockIdx.y, b = blockIdx.z;
  const int warp_row = (threadIdx.x / 32) * 16, d_blocks = padded_dim / 16;
  load_tile(k_tile, t.k, b, k0, kv, padded_dim);
  load_tile(v_tile, t.v, b, k0, kv, padded_dim);
  zero_f32_tile(dk, acc_stride, padded_dim);
  zero_f32_tile(dv, acc_stride, padded_dim);
  for (int64_t h = 0; h < shape.H; ++h) {
    if (shape.kv_head(h) != kv) continue;
    for (int64_t q0 = k0; q0 < shape.T; q0 += kTile) {  // query tiles before k0 see none of these keys
      __syncthreads();
      load_tile(q_tile, t.q, b, q0, h, padded_dim);
      load_tile(dy_tile, t.dy, b, q0, h, padded_dim);
      load_row_statistics(lse_rows, dot_rows, t.lse, t.dy, t.y, shape, b, h, q0);
      __syncthreads();
      warp_product_abt(q_tile + warp_row * stride, stride, k_tile, stride, scores + warp_row * kScoreStride,
                       kScoreStride, kTile / 16, d_blocks);
      warp_product_abt(dy_tile + warp_row * stride, stride, v_tile, stride, dprobabilities + warp_row * kScoreStride,
                       kScoreStride, kTile / 16, d_blocks);
      __syncwarp();
      probabilities_and_dscores(scores, dprobabilities, lse_rows, dot_rows, P, dS, q0, k0, shape);
      __syncthreads();
      // The warp's 16 key rows: dV += Pᵀ · dO, dK += dSᵀ · Q.
      warp_accumulate_ab<wmma::col_major>(P + warp_row, kProbabilityStride, dy_tile, stride, dv + warp_row * acc_stride,
                                          acc_stride, d_blocks, kTile / 16);
      warp_accumulate_ab<wmma::col_major>(dS + warp_row, kProbabilityStride, q_tile, stride, dk + warp_row * acc_stride,
                                          acc_stride, d_blocks, kTile / 16);
    }
  }
  __syncthreads();
  store_tile(t.dk, dk, acc_stride, b, k0, kv);
  store_tile(t.dv, dv, acc_stride, b, k0, kv);
}

__global__ void __launch_bounds__(kAttentionThreads) attention_dq_kernel(BackwardTensors t, AttentionShape shape) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = shape.padded_dim, stride = bf16_stride(padded_dim), acc_stride = f32_stride(padded_dim);
  const BackwardLayout layout(padded_dim, 1);
  __nv_bfloat16* q_tile = shared_region<__nv_bfloat16>(shared, layout.tile_a);
  __nv_bfloat16* dy_tile = shared_region<__nv_bfloat16>(shared, layout.tile_b);
  __nv_bfloat16* k_tile = shared_region<__nv_bfloat16>(shared, layout.tile_c);
  __nv_bfloat16* v_tile = shared_region<__nv_bfloat16>(shared, layout.tile_d);
  float* scores = shared_region<float>(shared, layout.scores);
  float* dprobabilities = shared_region<float>(shared, layout.dprobabilities);
  __nv_bfloat16* P = shared_region<__nv_bfloat16>(shared, layout.P);
  __nv_bfloat16* dS = shared_region<__nv_bfloat16>(shared, layout.dS);
  float* dq = shared_region<float>(shared, layout.accumulator_a);
  float* lse_rows = shared_region<float>(shared, layout.lse_rows);
  float* dot_rows = shared_region<float>(shared, layout.dot_rows);

  const int64_t q0 = int64_t(blockIdx.x) * kTile, h = blockIdx.y, b = blockIdx.z, kv = shape.kv_head(h);
  const int warp_row = (threadIdx.x / 32) * 16, d_blocks = padded_dim / 16;
  load_tile(q_tile, t.q, b, q0, h, padded_dim);
  load_tile(dy_tile, t.dy, b, q0, h, padded_dim);
  load_row_statistics(lse_rows, dot_rows, t.lse, t.dy, t.y, shape, b, h, q0);
  zero_f32_tile(dq, acc_stride, padded_dim);
  const int64_t last_key = min(q0 + kTile, shape.T);
  for (int64_t k0 = 0; k0 < last_key; k0 += kTile) {
    __syncthreads();
    load_tile(k_tile, t.k, b, k0, kv, padded_dim);
    load_tile(v_tile, t.v, b, k0, kv, padded_dim);
    __syncthreads();
    warp_product_abt(q_tile + warp_row * stride, stride, k_tile, stride, scores + warp_row * kScoreStride, kScoreStride,
                     kTile / 16, d_blocks);
    warp_product_abt(dy_tile + warp_row * stride, stride, v_tile, stride, dprobabilities + warp_row * kScoreStride,
                     kScoreStride, kTile / 16, d_blocks);
    __syncwarp();
    probabilities_and_dscores(scores, dprobabilities, lse_rows, dot_rows, P, dS, q0, k0, shape);
    __syncwarp();
    warp_accumulate_ab<wmma::row_major>(dS + warp_row * kProbabilityStride, kProbabilityStride, k_tile, stride,
                                        dq + warp_row * acc_stride, acc_stride, d_blocks, kTile / 16);
  }
  __syncthreads();
  store_tile(t.dq, dq, acc_stride, b, q0, h);
}

void launch(void (*kernel)(BackwardTensors, AttentionShape), const char* name, dim3 grid, size_t shared_bytes, const BackwardTensors& tensors,
            const AttentionShape& shape) {
  T6_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  T6_LAUNCH_AS(kernel, name, grid, kAttentionThreads, shared_bytes, cuda_context().stream())(tensors, shape);
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
  auto queries = [&](const Tensor& x) { return HeadTensor{float_ref(op, x), shape.T, shape.H, shape.D}; };
  auto keys = [&](const Tensor& x) { return HeadTensor{float_ref(op, x), shape.T, shape.Hkv, shape.D}; };
  const BackwardTensors tensors{queries(dq), keys(dk), keys(dv), queries(dy), queries(q), keys(k), keys(v), queries(y),
                                lse.data<float>()};
  const unsigned tiles = unsigned((shape.T + kTile - 1) / kTile);
  // A KV head that no local query head maps to still gets its (zero) gradient written by pass 1.
  launch(attention_dkdv_kernel, "attention_dkdv_kernel", dim3(tiles, unsigned(shape.Hkv), unsigned(shape.B)),
         BackwardLayout(shape.padded_dim, 2).plan.bytes, tensors, shape);
  if (shape.H > 0)
    launch(attention_dq_kernel, "attention_dq_kernel", dim3(tiles, unsigned(shape.H), unsigned(shape.B)),
           BackwardLayout(shape.padded_dim, 1).plan.bytes, tensors, shape);
}

}  // namespace t6::ops::cuda
