// Causal attention forward on the GPU, FlashAttention-style: one block per (batch, head, 64-query
// tile) walks the key tiles up to the diagonal, scores on the tensor cores (WMMA, bf16 in, fp32
// accumulate), an online softmax in fp32 whose row maximum and sum are kept per query row, and the
// output accumulated in fp32 shared memory. Saves only y and the log-sum-exp of each row; the
// T × T scores never reach global memory. GQA: the block reads the KV head its query head maps to.
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/attention_steps.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/dynamic_shared.cuh"

namespace t6::ops::cuda {

namespace {

// At D = Dv = 192 (the widest): 3 · 25.6 KB of q/k/v tiles, 27 KB of scores and probabilities, 50 KB
// of fp32 output: 151 KB, under the 227 KB a block may opt in to on an H100.
struct ForwardLayout {
  size_t q, k, v, scores, probabilities, out, row_max, row_sum, row_correction;
  SharedLayout plan;
  __host__ __device__ ForwardLayout(int padded_dim, int padded_value_dim) {
    q = plan.add<__nv_bfloat16>(size_t(kTile) * bf16_stride(padded_dim));
    k = plan.add<__nv_bfloat16>(size_t(kTile) * bf16_stride(padded_dim));
    v = plan.add<__nv_bfloat16>(size_t(kTile) * bf16_stride(padded_value_dim));
    scores = plan.add<float>(size_t(kTile) * kScoreStride);
    probabilities = plan.add<__nv_bfloat16>(size_t(kTile) * kProbabilityStride);
    out = plan.add<float>(size_t(kTile) * f32_stride(padded_value_dim));
    row_max = plan.add<float>(kTile);
    row_sum = plan.add<float>(kTile);
    row_correction = plan.add<float>(kTile);
  }
};

__global__ void __launch_bounds__(kAttentionThreads) attention_forward_kernel(HeadTensor y, float* lse, HeadTensor q,
                                                                               HeadTensor k, HeadTensor v,
                                                                               AttentionShape shape) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = shape.padded_dim, stride = bf16_stride(padded_dim);
  const int padded_value_dim = shape.padded_value_dim, value_stride = bf16_stride(padded_value_dim);
  const int out_stride = f32_stride(padded_value_dim);
  const ForwardLayout layout(padded_dim, padded_value_dim);
  __nv_bfloat16* q_tile = shared_region<__nv_bfloat16>(shared, layout.q);
  __nv_bfloat16* k_tile = shared_region<__nv_bfloat16>(shared, layout.k);
  __nv_bfloat16* v_tile = shared_region<__nv_bfloat16>(shared, layout.v);
  float* scores = shared_region<float>(shared, layout.scores);
  __nv_bfloat16* probabilities = shared_region<__nv_bfloat16>(shared, layout.probabilities);
  float* out = shared_region<float>(shared, layout.out);
  float* row_max = shared_region<float>(shared, layout.row_max);
  float* row_sum = shared_region<float>(shared, layout.row_sum);
  float* row_correction = shared_region<float>(shared, layout.row_correction);

  const int64_t q0 = int64_t(blockIdx.x) * kTile, h = blockIdx.y, b = blockIdx.z, kv = shape.kv_head(h);
  const int d_blocks = padded_dim / 16, v_blocks = padded_value_dim / 16;
  load_tile(q_tile, q, b, q0, h, padded_dim);
  zero_f32_tile(out, out_stride, padded_value_dim);
  for (int r = threadIdx.x; r < kTile; r += blockDim.x) {
    row_max[r] = -INFINITY;
    row_sum[r] = 0.0f;
  }
  const int64_t last_key = min(q0 + kTile, shape.T);  // keys past the tile's last query are masked
  for (int64_t k0 = 0; k0 < last_key; k0 += kTile) {
    __syncthreads();  // the previous tile's k and v are no longer read
    load_tile(k_tile, k, b, k0, kv, padded_dim);
    load_tile(v_tile, v, b, k0, kv, padded_value_dim);
    __syncthreads();
    attend_key_tile(q_tile, k_tile, stride, d_blocks, v_tile, value_stride, v_blocks, scores, probabilities, row_max,
                    row_sum, row_correction, out, out_stride, q0, k0, shape.T, shape.scale);
  }
  __syncthreads();
  store_output_and_lse(y, lse, out, out_stride, row_max, row_sum, b, h, q0, shape.Dv);
}

}  // namespace

void attention_forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, HeadMap heads) {
  const char* op = "attention_forward";
  const AttentionShape shape = check_attention(op, q, k, v, y, lse, heads);
  const HeadTensor output{float_ref(op, y), shape.T, shape.H, shape.Dv}, queries{float_ref(op, q), shape.T, shape.H, shape.D};
  const HeadTensor keys{float_ref(op, k), shape.T, shape.Hkv, shape.D}, values{float_ref(op, v), shape.T, shape.Hkv, shape.Dv};
  float* const row_lse = lse.data<float>();
  if (shape.B * shape.T * shape.H == 0) return;
  const size_t shared_bytes = ForwardLayout(shape.padded_dim, shape.padded_value_dim).plan.bytes;
  T6_CUDA_CHECK(cudaFuncSetAttribute(attention_forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(shared_bytes)));
  const dim3 grid(unsigned((shape.T + kTile - 1) / kTile), unsigned(shape.H), unsigned(shape.B));
  T6_LAUNCH(attention_forward_kernel, grid, kAttentionThreads, shared_bytes, cuda_context().stream())(
      output, row_lse, queries, keys, values, shape);
  T6_CUDA_CHECK_LAUNCH("attention_forward_kernel");
}

}  // namespace t6::ops::cuda
