// The pieces of the fused TPA attention (tpa_attention_fused.cu) that turn factors into attention
// tiles and attention gradients back into factor gradients, on chip:
//   build_tile: rows [t0, t0 + kTile) of one head of q, k or v, x[t, :] = (1/rank) Σ_r A[t, h, r] · B̃[t, r, :]
//     with B̃ = RoPE(B) for q and k (docs/MODEL.md 1 and 1.1), as the bf16 tile attention_tiles.cuh's
//     load_tile would give for the materialised tensor; B̃ from global memory, or from a shared
//     stage (stage_rotated_B) that a group of heads shares;
//   fold_head_gradient: one head's fp32 dq/dk/dv tile into dA (stored) and into the block's fp32 dB
//     accumulator (summed over heads in head order: no atomics);
//   store_factor_gradient: that accumulator through RoPEᵀ into dB.
// The arithmetic follows the materialised path's kernels (tpa_contract.cu, rope.cu) term by term, so
// that the two paths differ only where the materialised one rounds q/k/v, dq/dk/dv or dB̃ to storage.
#pragma once
#include "kernels/cuda/attention_tiles.cuh"

namespace t6::ops::cuda {

// One of q, k, v as factors: A (B, T, H, rank), B (B, T, rank, D), B rotated by RoPE where `rotate`.
struct TpaFactor {
  FloatRef A, B;
  int64_t rank;
  float inv_rank;
  bool rotate;
};

// What every fused kernel needs besides the factors: shapes and the RoPE tables (T_tables, D/2).
struct TpaShape {
  int64_t B, T, H, D;
  int padded_dim;  // D rounded up to a multiple of 16
  float scale;     // 1 / sqrt(D)
  FloatRef cos, sin;
  int64_t heads_per_block;  // the forward's head group
};

__device__ __forceinline__ int64_t factor_A_offset(const TpaFactor& f, const TpaShape& s, int64_t b, int64_t t, int64_t h) {
  return ((b * s.T + t) * s.H + h) * f.rank;
}
__device__ __forceinline__ int64_t factor_B_offset(const TpaFactor& f, const TpaShape& s, int64_t b, int64_t t, int64_t r) {
  return ((b * s.T + t) * f.rank + r) * s.D;
}

// B̃[t, r, j], rounded to B's storage type as rope_forward would store it in the materialised path.
__device__ __forceinline__ float rotated_B(const TpaFactor& f, const TpaShape& s, int64_t b, int64_t t, int64_t r,
                                           int64_t j) {
  const int64_t row = factor_B_offset(f, s, b, t, r);
  if (!f.rotate) return f.B.load(row + j);
  const int64_t half = s.D / 2, i = j < half ? j : j - half;
  const float x1 = f.B.load(row + i), x2 = f.B.load(row + i + half);
  const float c = s.cos.load(t * half + i), sn = s.sin.load(t * half + i);
  const float value = j < half ? x1 * c + x2 * sn : -x1 * sn + x2 * c;  // y1, y2 of docs/MODEL.md 1.1
  return f.B.bf16 ? __bfloat162float(__float2bfloat16(value)) : value;
}

// B̃ of rows [t0, t0 + kTile) into stage (fp32, (kTile, rank, D)), zeros past T: read and rotated once
// for all the heads that build their tiles from it.
__device__ inline void stage_rotated_B(float* stage, const TpaFactor& f, const TpaShape& s, int64_t b, int64_t t0) {
  for (int64_t e = threadIdx.x; e < kTile * f.rank * s.D; e += blockDim.x) {
    const int row = int(e / (f.rank * s.D));
    const int64_t r = e / s.D % f.rank, j = e % s.D, t = t0 + row;
    stage[e] = t < s.T ? rotated_B(f, s, b, t, r, j) : 0.0f;
  }
}

// Rows [t0, t0 + kTile) of head h of the factor's q/k/v into dst (bf16, stride bf16_stride(padded_dim)),
// zeros past T and past D. B̃ comes from `stage` (stage_rotated_B of the same rows) or, where it is
// null, from global memory.
__device__ inline void build_tile(__nv_bfloat16* dst, const TpaFactor& f, const TpaShape& s, int64_t b, int64_t t0,
                                  int64_t h, const float* stage = nullptr) {
  const int stride = bf16_stride(s.padded_dim);
  for (int e = threadIdx.x; e < kTile * s.padded_dim; e += blockDim.x) {
    const int row = e / s.padded_dim, c = e % s.padded_dim;
    const int64_t t = t0 + row;
    float value = 0.0f;
    if (t < s.T && c < s.D) {
      const int64_t a = factor_A_offset(f, s, b, t, h);
      float sum = 0;
      for (int64_t r = 0; r < f.rank; ++r)
        sum += f.A.load(a + r) * (stage ? stage[(row * f.rank + r) * s.D + c] : rotated_B(f, s, b, t, r, c));
      value = sum * f.inv_rank;
    }
    dst[row * stride + c] = __float2bfloat16(value);
  }
}

// One head's gradient tile (fp32, rows [t0, t0 + kTile), stride acc_stride) of q, k or v:
//   dA[t, h, r] = (1/rank) Σ_j dx[t, j] · B̃[t, r, j], stored;
//   dB̃[t, r, j] += (A[t, h, r] / rank) · dx[t, j] into the block's accumulator (kTile, rank, D),
// every element owned by one thread, so heads add up in head order.
__device__ inline void fold_head_gradient(float* dB_accumulator, FloatRef dA, const float* dx, int acc_stride,
                                          const TpaFactor& f, const TpaShape& s, int64_t b, int64_t t0, int64_t h) {
  for (int64_t e = threadIdx.x; e < kTile * f.rank; e += blockDim.x) {
    const int row = int(e / f.rank);
    const int64_t r = e % f.rank, t = t0 + row;
    if (t >= s.T) continue;
    float sum = 0;
    for (int64_t j = 0; j < s.D; ++j) sum += dx[row * acc_stride + j] * rotated_B(f, s, b, t, r, j);
    dA.store(factor_A_offset(f, s, b, t, h) + r, sum * f.inv_rank);
  }
  for (int64_t e = threadIdx.x; e < kTile * f.rank * s.D; e += blockDim.x) {
    const int row = int(e / (f.rank * s.D));
    const int64_t r = e / s.D % f.rank, j = e % s.D, t = t0 + row;
    if (t >= s.T) continue;
    dB_accumulator[e] += f.A.load(factor_A_offset(f, s, b, t, h) + r) * f.inv_rank * dx[row * acc_stride + j];
  }
}

// The accumulator (kTile, rank, D) into dB's rows [t0, t0 + kTile), through RoPEᵀ where the factor
// is rotated: dx1 = dy1·cos − dy2·sin, dx2 = dy1·sin + dy2·cos (docs/MODEL.md 1.1).
__device__ inline void store_factor_gradient(FloatRef dB, const float* dB_accumulator, const TpaFactor& f,
                                             const TpaShape& s, int64_t b, int64_t t0) {
  const int64_t half = s.D / 2;
  for (int64_t e = threadIdx.x; e < kTile * f.rank * s.D; e += blockDim.x) {
    const int row = int(e / (f.rank * s.D));
    const int64_t r = e / s.D % f.rank, j = e % s.D, t = t0 + row;
    if (t >= s.T) continue;
    float value = dB_accumulator[e];
    if (f.rotate) {
      const int64_t i = j < half ? j : j - half, first = e - j + i;
      const float y1 = dB_accumulator[first], y2 = dB_accumulator[first + half];
      const float c = s.cos.load(t * half + i), sn = s.sin.load(t * half + i);
      value = j < half ? y1 * c - y2 * sn : y1 * sn + y2 * c;
    }
    dB.store(factor_B_offset(f, s, b, t, r) + j, value);
  }
}

}  // namespace t6::ops::cuda
