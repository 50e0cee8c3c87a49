// The steps of the FlashAttention-style kernels shared by plain attention (attention_forward.cu,
// attention_backward.cu) and the fused TPA attention (tpa_attention_fused.cu), which differ only in
// where their q/k/v tiles come from: the forward's step over one key tile and its final store, the backward's shared-memory
// layout, row statistics and P / dS, and the store of an fp32 accumulator tile.
#pragma once
#include <cmath>

#include "kernels/cuda/attention_tiles.cuh"

namespace t6::ops::cuda {

// The warp's 16 rows of the score tile (key tile starting at k0) become bf16 probabilities against
// the running row maxima, which are updated with the row sums; row_correction gets the factor
// by which the rows' earlier output must shrink.
__device__ inline void online_softmax_rows(const float* scores, __nv_bfloat16* probabilities, float* row_max, float* row_sum,
                                    float* row_correction, int64_t q0, int64_t k0, int64_t T, float scale) {
  const int lane = threadIdx.x % 32, first_row = (threadIdx.x / 32) * 16;
  for (int r = first_row; r < first_row + 16; ++r) {
    const int64_t q = q0 + r;
    float s[2];
    float largest = -INFINITY;
    for (int half = 0; half < 2; ++half) {
      const int c = lane + 32 * half;
      const int64_t key = k0 + c;
      s[half] = key <= q && key < T ? scores[r * kScoreStride + c] * scale : -INFINITY;
      largest = fmaxf(largest, s[half]);
    }
    largest = warp_max(largest);
    const float old_max = row_max[r];
    const float new_max = fmaxf(old_max, largest);
    float sum = 0;
    for (int half = 0; half < 2; ++half) {
      const float p = new_max == -INFINITY ? 0.0f : expf(s[half] - new_max);
      probabilities[r * kProbabilityStride + lane + 32 * half] = __float2bfloat16(p);
      sum += p;
    }
    sum = warp_sum(sum);
    // Every lane read row_max[r] above; CUDA documents only __syncwarp (not the shuffles) as
    // ordering those reads before lane 0's write.
    __syncwarp();
    if (lane == 0) {
      const float correction = old_max == -INFINITY ? 0.0f : expf(old_max - new_max);
      row_correction[r] = correction;
      row_sum[r] = row_sum[r] * correction + sum;
      row_max[r] = new_max;
    }
  }
}

// One key tile (starting at k0) of the forward for a 64-row query tile, each warp its 16 rows: the
// scores q·kᵀ on the tensor cores, the online softmax, the earlier output rescaled, then out += P·v.
// q_tile and k_tile are padded_dim wide (stride qk_stride), v_tile value_blocks · 16 wide; out is
// the tile's fp32 output (stride out_stride); row_max and row_sum are the tile's running statistics.
// The caller has the k and v tiles written and visible (a __syncthreads after their loads).
__device__ inline void attend_key_tile(const __nv_bfloat16* q_tile, const __nv_bfloat16* k_tile, int qk_stride,
                                       int qk_blocks, const __nv_bfloat16* v_tile, int v_stride, int value_blocks,
                                       float* scores, __nv_bfloat16* probabilities, float* row_max, float* row_sum,
                                       float* row_correction, float* out, int out_stride, int64_t q0, int64_t k0,
                                       int64_t T, float scale) {
  const int warp_row = (threadIdx.x / 32) * 16, lane = threadIdx.x % 32;
  warp_product_abt(q_tile + warp_row * qk_stride, qk_stride, k_tile, qk_stride, scores + warp_row * kScoreStride,
                   kScoreStride, kTile / 16, qk_blocks);
  __syncwarp();
  online_softmax_rows(scores, probabilities, row_max, row_sum, row_correction, q0, k0, T, scale);
  __syncwarp();
  for (int r = warp_row; r < warp_row + 16; ++r)
    for (int c = lane; c < value_blocks * 16; c += 32) out[r * out_stride + c] *= row_correction[r];
  __syncwarp();
  warp_accumulate_ab<wmma::row_major>(probabilities + warp_row * kProbabilityStride, kProbabilityStride, v_tile,
                                      v_stride, out + warp_row * out_stride, out_stride, value_blocks, kTile / 16);
}

// The end of the forward for one head: y = out / row_sum in the first `width` columns, and the rows'
// log-sum-exp into lse (B, H, T), for rows [q0, q0 + kTile) before T.
__device__ inline void store_output_and_lse(const HeadTensor& y, float* lse, const float* out, int out_stride,
                                            const float* row_max, const float* row_sum, int64_t b, int64_t h,
                                            int64_t q0, int64_t width) {
  for (int e = threadIdx.x; e < kTile * width; e += blockDim.x) {
    const int r = e / int(width), c = e % int(width);
    if (q0 + r < y.T) y.data.store(y.offset(b, q0 + r, h) + c, out[r * out_stride + c] / row_sum[r]);
  }
  for (int r = threadIdx.x; r < kTile; r += blockDim.x)
    if (q0 + r < y.T) lse[(b * y.heads + h) * y.T + q0 + r] = row_max[r] + logf(row_sum[r]);
}

// The per-row statistics of a query tile: lse and D = rowsum(dO ⊙ y), for rows [q0, q0 + kTile).
__device__ inline void load_row_statistics(float* lse_rows, float* dot_rows, const float* lse, const HeadTensor& dy,
                                    const HeadTensor& y, const AttentionShape& shape, int64_t b, int64_t h, int64_t q0) {
  const int lane = threadIdx.x % 32, first_row = (threadIdx.x / 32) * 16;
  for (int r = first_row; r < first_row + 16; ++r) {
    const int64_t q = q0 + r;
    float dot = 0;
    if (q < shape.T)
      for (int64_t c = lane; c < dy.D; c += 32) dot += dy.data.load(dy.offset(b, q, h) + c) * y.data.load(y.offset(b, q, h) + c);
    dot = warp_sum(dot);
    if (lane == 0) {
      dot_rows[r] = dot;
      lse_rows[r] = q < shape.T ? lse[(b * shape.H + h) * shape.T + q] : 0.0f;
    }
  }
}

// The warp's 16 query rows of P and dS (bf16) from the score and dO·vᵀ tiles; zero where masked.
__device__ inline void probabilities_and_dscores(const float* scores, const float* dprobabilities, const float* lse_rows,
                                          const float* dot_rows, __nv_bfloat16* P, __nv_bfloat16* dS, int64_t q0,
                                          int64_t k0, const AttentionShape& shape) {
  const int lane = threadIdx.x % 32, first_row = (threadIdx.x / 32) * 16;
  for (int r = first_row; r < first_row + 16; ++r) {
    const int64_t q = q0 + r;
    for (int half = 0; half < 2; ++half) {
      const int c = lane + 32 * half;
      const int64_t key = k0 + c;
      const bool visible = key <= q && key < shape.T && q < shape.T;
      const float p = visible ? expf(scores[r * kScoreStride + c] * shape.scale - lse_rows[r]) : 0.0f;
      const float ds = p * (dprobabilities[r * kScoreStride + c] - dot_rows[r]) * shape.scale;
      P[r * kProbabilityStride + c] = __float2bfloat16(p);
      dS[r * kProbabilityStride + c] = __float2bfloat16(ds);
    }
  }
}

// Which fp32 accumulators a block keeps: pass 1 dK and dV (or one of them), pass 2 dQ.
enum Accumulators : int { kDk = 1, kDv = 2, kDq = 4 };

// Tiles a and c are D wide (q, k), b and d Dv wide (v, dO); accumulator_k (dK or dQ) D wide,
// accumulator_v (dV) Dv wide.
struct BackwardLayout {
  size_t tile_a, tile_b, tile_c, tile_d, scores, dprobabilities, P, dS, accumulator_k, accumulator_v, lse_rows, dot_rows;
  SharedLayout plan;
  __host__ __device__ BackwardLayout(int padded_dim, int padded_value_dim, int accumulators) {
    const size_t tile = size_t(kTile) * bf16_stride(padded_dim), value_tile = size_t(kTile) * bf16_stride(padded_value_dim);
    tile_a = plan.add<__nv_bfloat16>(tile);
    tile_b = plan.add<__nv_bfloat16>(value_tile);
    tile_c = plan.add<__nv_bfloat16>(tile);
    tile_d = plan.add<__nv_bfloat16>(value_tile);
    scores = plan.add<float>(size_t(kTile) * kScoreStride);
    dprobabilities = plan.add<float>(size_t(kTile) * kScoreStride);
    P = plan.add<__nv_bfloat16>(size_t(kTile) * kProbabilityStride);
    dS = plan.add<__nv_bfloat16>(size_t(kTile) * kProbabilityStride);
    accumulator_k = accumulators & (kDk | kDq) ? plan.add<float>(size_t(kTile) * f32_stride(padded_dim)) : 0;
    accumulator_v = accumulators & kDv ? plan.add<float>(size_t(kTile) * f32_stride(padded_value_dim)) : 0;
    lse_rows = plan.add<float>(kTile);
    dot_rows = plan.add<float>(kTile);
  }
};

// A BackwardLayout's regions in a block's shared memory. Pass 1 uses tiles a, b, c, d for k, v, q,
// dO and pass 2 for q, dO, k, v; accumulator_k holds dK or dQ, accumulator_v dV.
struct BackwardRegions {
  __nv_bfloat16 *tile_a, *tile_b, *tile_c, *tile_d, *P, *dS;
  float *scores, *dprobabilities, *accumulator_k, *accumulator_v, *lse_rows, *dot_rows;
  __device__ BackwardRegions(char* shared, const BackwardLayout& layout)
      : tile_a(shared_region<__nv_bfloat16>(shared, layout.tile_a)),
        tile_b(shared_region<__nv_bfloat16>(shared, layout.tile_b)),
        tile_c(shared_region<__nv_bfloat16>(shared, layout.tile_c)),
        tile_d(shared_region<__nv_bfloat16>(shared, layout.tile_d)),
        P(shared_region<__nv_bfloat16>(shared, layout.P)),
        dS(shared_region<__nv_bfloat16>(shared, layout.dS)),
        scores(shared_region<float>(shared, layout.scores)),
        dprobabilities(shared_region<float>(shared, layout.dprobabilities)),
        accumulator_k(shared_region<float>(shared, layout.accumulator_k)),
        accumulator_v(shared_region<float>(shared, layout.accumulator_v)),
        lse_rows(shared_region<float>(shared, layout.lse_rows)),
        dot_rows(shared_region<float>(shared, layout.dot_rows)) {}
};

// The backward's P and dS (bf16, in the regions) for one pair of query tile q0 and key tile k0, each
// warp its 16 query rows: the scores q·kᵀ and dP = dO·vᵀ on the tensor cores, then
// probabilities_and_dscores against the rows' statistics. q and k tiles are qk_blocks · 16 wide
// (stride qk_stride), dO and v tiles v_blocks · 16 (stride v_stride). The caller has the tiles and
// row statistics written and visible; P and dS are the warp's own rows until a barrier.
__device__ inline void backward_tile_pair(const BackwardRegions& regions, const __nv_bfloat16* q_tile,
                                          const __nv_bfloat16* k_tile, int qk_stride, int qk_blocks,
                                          const __nv_bfloat16* dy_tile, const __nv_bfloat16* v_tile, int v_stride,
                                          int v_blocks, int64_t q0, int64_t k0, const AttentionShape& shape) {
  const int warp_row = (threadIdx.x / 32) * 16;
  warp_product_abt(q_tile + warp_row * qk_stride, qk_stride, k_tile, qk_stride, regions.scores + warp_row * kScoreStride,
                   kScoreStride, kTile / 16, qk_blocks);
  warp_product_abt(dy_tile + warp_row * v_stride, v_stride, v_tile, v_stride,
                   regions.dprobabilities + warp_row * kScoreStride, kScoreStride, kTile / 16, v_blocks);
  __syncwarp();
  probabilities_and_dscores(regions.scores, regions.dprobabilities, regions.lse_rows, regions.dot_rows, regions.P,
                            regions.dS, q0, k0, shape);
}

// Rows [t0, t0 + kTile) of an fp32 shared accumulator into one head of x, the first D columns.
__device__ inline void store_tile(const HeadTensor& x, const float* accumulator, int stride, int64_t b, int64_t t0, int64_t head) {
  for (int e = threadIdx.x; e < kTile * x.D; e += blockDim.x) {
    const int r = e / int(x.D), c = e % int(x.D);
    if (t0 + r < x.T) x.data.store(x.offset(b, t0 + r, head) + c, accumulator[r * stride + c]);
  }
}

}  // namespace t6::ops::cuda
