// The building blocks of the FlashAttention-style kernels (attention_forward.cu,
// attention_backward.cu): 64-row tiles of q/k/v-like tensors staged in shared memory as bf16, and
// warp-level products on the tensor cores through WMMA (bf16 in, fp32 accumulate), each warp of
// four owning 16 rows of a tile. Head widths up to 192 (MLA's 128 + 64 query/key width) are padded
// to a multiple of 16 with zeros, and rows past T are zero, so any T, any query/key width D and any
// value width Dv in 1..192 run the same code (Dv ≠ D in MLA).
#pragma once
#include <cuda_bf16.h>
#include <mma.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/device_tensor.cuh"
#include "kernels/ops.h"

namespace t6::ops::cuda {

constexpr int kTile = 64;         // query rows and key rows per tile
constexpr int kWarps = 4;         // each warp owns kTile / kWarps = 16 rows
constexpr int kAttentionThreads = 32 * kWarps;
constexpr int kMaxHeadDim = 192;

// Shared-memory strides (elements): padded against bank conflicts, multiples of 8 (bf16) and 4
// (fp32) as WMMA requires, keeping every 16-row and 16-column fragment 32-byte aligned.
__host__ __device__ constexpr int bf16_stride(int padded_dim) { return padded_dim + 8; }
__host__ __device__ constexpr int f32_stride(int padded_dim) { return padded_dim + 4; }
constexpr int kScoreStride = f32_stride(kTile);
constexpr int kProbabilityStride = bf16_stride(kTile);

// One (B, T, heads, D) tensor as the kernels index it.
struct HeadTensor {
  FloatRef data;
  int64_t T, heads, D;
  __device__ __forceinline__ int64_t offset(int64_t b, int64_t t, int64_t head) const {
    return ((b * T + t) * heads + head) * D;
  }
};

struct AttentionShape {
  int64_t B, T, H, Hkv, D, Dv;
  int padded_dim;        // D rounded up to a multiple of 16
  int padded_value_dim;  // Dv rounded up to a multiple of 16
  float scale;           // 1 / sqrt(D)
  HeadMap heads;
  __device__ __forceinline__ int64_t kv_head(int64_t h) const {
    return (heads.first_head + h) / heads.group_size - heads.first_kv_head;
  }
};

// Checks the tensors of an attention op (as the CPU twin does) and returns the kernel's view of them.
AttentionShape check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& y,
                               const Tensor& lse, const HeadMap& heads);

// Rows [t0, t0 + kTile) of one head of x into dst (bf16, stride bf16_stride(padded_dim)), zeros past T
// and past D. bf16 rows whose D is a multiple of 8 (the model's 64, 128) move as 16-byte vectors.
__device__ __forceinline__ void load_tile(__nv_bfloat16* dst, const HeadTensor& x, int64_t b, int64_t t0, int64_t head,
                                          int padded_dim) {
  const int stride = bf16_stride(padded_dim);
  const bool vectors = x.data.bf16 && x.D % 8 == 0 && reinterpret_cast<uintptr_t>(x.data.data) % 16 == 0;
  if (vectors) {
    const __nv_bfloat16* source = static_cast<const __nv_bfloat16*>(x.data.data);
    const int per_row = padded_dim / 8;
    for (int e = threadIdx.x; e < kTile * per_row; e += blockDim.x) {
      const int r = e / per_row, c = (e % per_row) * 8;
      const int64_t t = t0 + r;
      uint4 value = make_uint4(0, 0, 0, 0);
      if (t < x.T && c < x.D) value = *reinterpret_cast<const uint4*>(source + x.offset(b, t, head) + c);
      *reinterpret_cast<uint4*>(dst + r * stride + c) = value;
    }
    return;
  }
  for (int e = threadIdx.x; e < kTile * padded_dim; e += blockDim.x) {
    const int r = e / padded_dim, c = e % padded_dim;
    const int64_t t = t0 + r;
    const float value = t < x.T && c < x.D ? x.data.load(x.offset(b, t, head) + c) : 0.0f;
    dst[r * stride + c] = __float2bfloat16(value);
  }
}

// Shared fp32 tile set to zero (accumulators).
__device__ __forceinline__ void zero_f32_tile(float* tile, int stride, int cols) {
  for (int e = threadIdx.x; e < kTile * cols; e += blockDim.x) tile[(e / cols) * stride + e % cols] = 0.0f;
}

namespace wmma = nvcuda::wmma;

// The warp's 16 × (16·column_blocks) block of C = A · Bᵀ, with A (16 × 16·depth_blocks) row-major and
// B stored row-major as (16·column_blocks × 16·depth_blocks): scores Q·Kᵀ, dO·Vᵀ.
__device__ __forceinline__ void warp_product_abt(const __nv_bfloat16* A, int lda, const __nv_bfloat16* B, int ldb, float* C,
                                                 int ldc, int column_blocks, int depth_blocks) {
  for (int c = 0; c < column_blocks; ++c) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k = 0; k < depth_blocks; ++k) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bt;
      wmma::load_matrix_sync(a, A + 16 * k, lda);
      wmma::load_matrix_sync(bt, B + 16 * c * ldb + 16 * k, ldb);
      wmma::mma_sync(acc, a, bt, acc);
    }
    wmma::store_matrix_sync(C + 16 * c, acc, ldc, wmma::mem_row_major);
  }
}

// The warp's 16 × (16·column_blocks) block of C += op(A) · B, B (16·depth_blocks × ...) row-major. With
// ALayout = row_major, A is the warp's 16 rows (16 × 16·depth_blocks); with col_major, A points at
// the warp's 16 columns of a row-major (16·depth_blocks × ...) matrix, so op(A) is its transpose
// (Pᵀ·dO, dSᵀ·Q).
template <class ALayout>
__device__ __forceinline__ void warp_accumulate_ab(const __nv_bfloat16* A, int lda, const __nv_bfloat16* B, int ldb,
                                                   float* C, int ldc, int column_blocks, int depth_blocks) {
  constexpr bool transposed = std::is_same<ALayout, wmma::col_major>::value;
  for (int c = 0; c < column_blocks; ++c) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(acc, C + 16 * c, ldc, wmma::mem_row_major);
    for (int k = 0; k < depth_blocks; ++k) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, ALayout> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
      wmma::load_matrix_sync(a, transposed ? A + 16 * k * lda : A + 16 * k, lda);
      wmma::load_matrix_sync(b, B + 16 * k * ldb + 16 * c, ldb);
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(C + 16 * c, acc, ldc, wmma::mem_row_major);
  }
}

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}
__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Offsets of regions in a block's dynamic shared memory, each 128-byte aligned; computed the same
// way on the host (to size the launch) and in the kernel (to find the regions).
struct SharedLayout {
  size_t bytes = 0;
  template <class T>
  __host__ __device__ size_t add(size_t count) {
    const size_t offset = bytes;
    bytes += (count * sizeof(T) + 127) / 128 * 128;
    return offset;
  }
};

template <class T>
__device__ __forceinline__ T* shared_region(char* shared, size_t offset) {
  return reinterpret_cast<T*>(shared + offset);
}

}  // namespace t6::ops::cuda
