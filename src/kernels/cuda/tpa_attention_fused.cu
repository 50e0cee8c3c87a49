// TPA attention fused on the GPU (DESIGN.md, "Fused TPA attention, the shape that pays"): the
// FlashAttention-style kernels of attention_forward.cu / attention_backward.cu, whose q/k/v tiles
// are built on chip from the six factors (tpa_tiles.cuh), RoPE included, so that q, k, v and their
// gradients never reach global memory. The forward saves nothing but y and the LSE.
//   Forward, one block per (batch, 64-query tile, group of heads): the group's q tiles and online
//     softmax states stay in shared memory while the key tiles go by; each key tile's B̃_k and B̃_v
//     are read and rotated once into a shared stage, from which every head builds its k and v.
//     The group is as many heads as asked for (all by default) that fit in shared memory.
//   Backward pass 1, one block per (batch, 64-key tile), every head: per head dK and dV of the tile
//     over the query tiles at or after it, then folded into dA_k, dA_v and the block's fp32 dB_k,
//     dB_v accumulators; after the last head, RoPEᵀ and the store of dB_k, dB_v.
//   Backward pass 2, one block per (batch, 64-query tile), every head: dQ likewise into dA_q, dB_q.
// The blocks of the backward own all heads because dB sums over heads: on chip, in head order,
// with no atomics, hence deterministic.
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/attention_steps.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/dynamic_shared.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tpa_tiles.cuh"

namespace t6::ops::cuda {

namespace {

struct FusedFactors {
  TpaFactor q, k, v;
};

struct FusedGradients {
  FloatRef dA_q, dB_q, dA_k, dB_k, dA_v, dB_v;
};

// y, dy (B, T, H, D) and lse (B, H, T).
struct FusedOutputs {
  HeadTensor y, dy;
  const float* lse;
};

// The forward's shared memory: per head of the group its q tile, output accumulator and row
// statistics; shared by the group the k/v tiles being built, scores, probabilities, and (where
// `staged`) the key tile's B̃_k and B̃_v.
struct FusedForwardLayout {
  size_t q, out, row_max, row_sum, row_correction, k, v, scores, probabilities, stage_k, stage_v;
  SharedLayout plan;
  __host__ __device__ FusedForwardLayout(int padded_dim, int64_t heads, int64_t D, int64_t rank_k, int64_t rank_v,
                                         bool staged) {
    q = plan.add<__nv_bfloat16>(size_t(heads * kTile * bf16_stride(padded_dim)));
    out = plan.add<float>(size_t(heads * kTile * f32_stride(padded_dim)));
    row_max = plan.add<float>(size_t(heads * kTile));
    row_sum = plan.add<float>(size_t(heads * kTile));
    row_correction = plan.add<float>(kTile);
    k = plan.add<__nv_bfloat16>(size_t(kTile) * bf16_stride(padded_dim));
    v = plan.add<__nv_bfloat16>(size_t(kTile) * bf16_stride(padded_dim));
    scores = plan.add<float>(size_t(kTile) * kScoreStride);
    probabilities = plan.add<__nv_bfloat16>(size_t(kTile) * kProbabilityStride);
    stage_k = plan.add<float>(staged ? size_t(kTile * rank_k * D) : 0);
    stage_v = plan.add<float>(staged ? size_t(kTile * rank_v * D) : 0);
  }
};

// One block per (64-query tile, group of s.heads_per_block heads, batch). The key tiles are the
// outer loop, so that each key tile's B̃_k and B̃_v are read and rotated once for the whole group.
__global__ void __launch_bounds__(kAttentionThreads) tpa_fused_forward_kernel(HeadTensor y, float* lse, FusedFactors f,
                                                                               TpaShape s, bool staged) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = s.padded_dim, stride = bf16_stride(padded_dim), out_stride = f32_stride(padded_dim);
  const int64_t q0 = int64_t(blockIdx.x) * kTile, b = blockIdx.z, first_head = int64_t(blockIdx.y) * s.heads_per_block;
  const int64_t heads = min(s.heads_per_block, s.H - first_head);
  const FusedForwardLayout layout(padded_dim, s.heads_per_block, s.D, f.k.rank, f.v.rank, staged);
  __nv_bfloat16* q_tiles = shared_region<__nv_bfloat16>(shared, layout.q);
  float* outs = shared_region<float>(shared, layout.out);
  float* row_max = shared_region<float>(shared, layout.row_max);
  float* row_sum = shared_region<float>(shared, layout.row_sum);
  float* row_correction = shared_region<float>(shared, layout.row_correction);
  __nv_bfloat16* k_tile = shared_region<__nv_bfloat16>(shared, layout.k);
  __nv_bfloat16* v_tile = shared_region<__nv_bfloat16>(shared, layout.v);
  float* scores = shared_region<float>(shared, layout.scores);
  __nv_bfloat16* probabilities = shared_region<__nv_bfloat16>(shared, layout.probabilities);
  float* stage_k = staged ? shared_region<float>(shared, layout.stage_k) : nullptr;
  float* stage_v = staged ? shared_region<float>(shared, layout.stage_v) : nullptr;
  const size_t q_size = size_t(kTile) * stride, out_size = size_t(kTile) * out_stride;

  const int d_blocks = padded_dim / 16;
  for (int64_t g = 0; g < heads; ++g) {
    build_tile(q_tiles + g * q_size, f.q, s, b, q0, first_head + g);
    zero_f32_tile(outs + g * out_size, out_stride, padded_dim);
  }
  for (int64_t r = threadIdx.x; r < heads * kTile; r += blockDim.x) {
    row_max[r] = -INFINITY;
    row_sum[r] = 0.0f;
  }
  const int64_t last_key = min(q0 + kTile, s.T);  // keys past the tile's last query are masked
  for (int64_t k0 = 0; k0 < last_key; k0 += kTile) {
    if (staged) {
      __syncthreads();  // the previous key tile's stage is no longer read
      stage_rotated_B(stage_k, f.k, s, b, k0);
      stage_rotated_B(stage_v, f.v, s, b, k0);
    }
    for (int64_t g = 0; g < heads; ++g) {
      __syncthreads();  // the stage is written; the previous head's k and v are no longer read
      build_tile(k_tile, f.k, s, b, k0, first_head + g, stage_k);
      build_tile(v_tile, f.v, s, b, k0, first_head + g, stage_v);
      __syncthreads();
      attend_key_tile(q_tiles + g * q_size, k_tile, stride, d_blocks, v_tile, stride, d_blocks, scores, probabilities,
                      row_max + g * kTile, row_sum + g * kTile, row_correction, outs + g * out_size, out_stride, q0, k0,
                      s.T, s.scale);
    }
  }
  __syncthreads();
  for (int64_t g = 0; g < heads; ++g)
    store_output_and_lse(y, lse, outs + g * out_size, out_stride, row_max + g * kTile, row_sum + g * kTile, b,
                         first_head + g, q0, s.D);
}

// The backward's shared memory: plain attention's, then fp32 dB accumulators (kTile, rank, D).
struct FusedBackwardLayout {
  BackwardLayout attention;
  size_t dB_first, dB_second;
  __host__ __device__ FusedBackwardLayout(int padded_dim, int accumulators, int64_t D, int64_t first_rank,
                                          int64_t second_rank)
      : attention(padded_dim, padded_dim, accumulators) {
    dB_first = attention.plan.add<float>(size_t(kTile * first_rank * D));
    dB_second = attention.plan.add<float>(size_t(kTile * second_rank * D));
  }
  __host__ __device__ size_t bytes() const { return attention.plan.bytes; }
};

__device__ void zero_accumulator(float* accumulator, int64_t count) {
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) accumulator[e] = 0.0f;
}

__global__ void __launch_bounds__(kAttentionThreads) tpa_fused_dkdv_kernel(FusedGradients g, FusedOutputs o,
                                                                            FusedFactors f, TpaShape s) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = s.padded_dim, stride = bf16_stride(padded_dim), acc_stride = f32_stride(padded_dim);
  const FusedBackwardLayout fused(padded_dim, kDk | kDv, s.D, f.k.rank, f.v.rank);
  const BackwardLayout& layout = fused.attention;
  const BackwardRegions regions(shared, layout);
  __nv_bfloat16 *k_tile = regions.tile_a, *v_tile = regions.tile_b, *q_tile = regions.tile_c,
                *dy_tile = regions.tile_d, *P = regions.P, *dS = regions.dS;
  float *dk = regions.accumulator_k, *dv = regions.accumulator_v, *lse_rows = regions.lse_rows, *dot_rows = regions.dot_rows;
  float* dB_k = shared_region<float>(shared, fused.dB_first);
  float* dB_v = shared_region<float>(shared, fused.dB_second);

  const int64_t k0 = int64_t(blockIdx.x) * kTile, b = blockIdx.z;
  const int warp_row = (threadIdx.x / 32) * 16, d_blocks = padded_dim / 16;
  const AttentionShape attention{s.B, s.T, s.H, s.H, s.D, s.D, s.padded_dim, s.padded_dim, s.scale, {}};
  zero_accumulator(dB_k, kTile * f.k.rank * s.D);
  zero_accumulator(dB_v, kTile * f.v.rank * s.D);
  for (int64_t h = 0; h < s.H; ++h) {
    __syncthreads();  // the previous head's dk and dv are folded
    build_tile(k_tile, f.k, s, b, k0, h);
    build_tile(v_tile, f.v, s, b, k0, h);
    zero_f32_tile(dk, acc_stride, padded_dim);
    zero_f32_tile(dv, acc_stride, padded_dim);
    for (int64_t q0 = k0; q0 < s.T; q0 += kTile) {  // query tiles before k0 see none of these keys
      __syncthreads();
      build_tile(q_tile, f.q, s, b, q0, h);
      load_tile(dy_tile, o.dy, b, q0, h, padded_dim);
      load_row_statistics(lse_rows, dot_rows, o.lse, o.dy, o.y, attention, b, h, q0);
      __syncthreads();
      backward_tile_pair(regions, q_tile, k_tile, stride, d_blocks, dy_tile, v_tile, stride, d_blocks, q0, k0, attention);
      __syncthreads();
      // The warp's 16 key rows: dV += Pᵀ · dO, dK += dSᵀ · Q.
      warp_accumulate_ab<wmma::col_major>(P + warp_row, kProbabilityStride, dy_tile, stride, dv + warp_row * acc_stride,
                                          acc_stride, d_blocks, kTile / 16);
      warp_accumulate_ab<wmma::col_major>(dS + warp_row, kProbabilityStride, q_tile, stride, dk + warp_row * acc_stride,
                                          acc_stride, d_blocks, kTile / 16);
    }
    __syncthreads();
    fold_head_gradient(dB_k, g.dA_k, dk, acc_stride, f.k, s, b, k0, h);
    fold_head_gradient(dB_v, g.dA_v, dv, acc_stride, f.v, s, b, k0, h);
  }
  __syncthreads();
  store_factor_gradient(g.dB_k, dB_k, f.k, s, b, k0);
  store_factor_gradient(g.dB_v, dB_v, f.v, s, b, k0);
}

__global__ void __launch_bounds__(kAttentionThreads) tpa_fused_dq_kernel(FusedGradients g, FusedOutputs o,
                                                                          FusedFactors f, TpaShape s) {
  T6_DYNAMIC_SHARED(shared);
  const int padded_dim = s.padded_dim, stride = bf16_stride(padded_dim), acc_stride = f32_stride(padded_dim);
  const FusedBackwardLayout fused(padded_dim, kDq, s.D, f.q.rank, 0);
  const BackwardLayout& layout = fused.attention;
  const BackwardRegions regions(shared, layout);
  __nv_bfloat16 *q_tile = regions.tile_a, *dy_tile = regions.tile_b, *k_tile = regions.tile_c,
                *v_tile = regions.tile_d, *dS = regions.dS;
  float *dq = regions.accumulator_k, *lse_rows = regions.lse_rows, *dot_rows = regions.dot_rows;
  float* dB_q = shared_region<float>(shared, fused.dB_first);

  const int64_t q0 = int64_t(blockIdx.x) * kTile, b = blockIdx.z;
  const int warp_row = (threadIdx.x / 32) * 16, d_blocks = padded_dim / 16;
  const AttentionShape attention{s.B, s.T, s.H, s.H, s.D, s.D, s.padded_dim, s.padded_dim, s.scale, {}};
  const int64_t last_key = min(q0 + kTile, s.T);
  zero_accumulator(dB_q, kTile * f.q.rank * s.D);
  for (int64_t h = 0; h < s.H; ++h) {
    __syncthreads();  // the previous head's dq is folded
    build_tile(q_tile, f.q, s, b, q0, h);
    load_tile(dy_tile, o.dy, b, q0, h, padded_dim);
    load_row_statistics(lse_rows, dot_rows, o.lse, o.dy, o.y, attention, b, h, q0);
    zero_f32_tile(dq, acc_stride, padded_dim);
    for (int64_t k0 = 0; k0 < last_key; k0 += kTile) {
      __syncthreads();
      build_tile(k_tile, f.k, s, b, k0, h);
      build_tile(v_tile, f.v, s, b, k0, h);
      __syncthreads();
      backward_tile_pair(regions, q_tile, k_tile, stride, d_blocks, dy_tile, v_tile, stride, d_blocks, q0, k0, attention);
      __syncwarp();
      warp_accumulate_ab<wmma::row_major>(dS + warp_row * kProbabilityStride, kProbabilityStride, k_tile, stride,
                                          dq + warp_row * acc_stride, acc_stride, d_blocks, kTile / 16);
    }
    __syncthreads();
    fold_head_gradient(dB_q, g.dA_q, dq, acc_stride, f.q, s, b, q0, h);
  }
  __syncthreads();
  store_factor_gradient(g.dB_q, dB_q, f.q, s, b, q0);
}

// ---- host side ---------------------------------------------------------------------------------

const char* const kOp = "tpa_attention_fused";

void require_shape(const Tensor& x, const Shape& expected, const char* name) {
  T6_CHECK(x.shape() == expected, kOp, ": ", name, " is ", x.shape().to_string(), ", expected ",
           expected.to_string());
}

// Checks the factors against y (B, T, H, D), lse and the tables; returns the kernels' view.
TpaShape check_fused(const Tensor& y, const Tensor& lse, const TpaFactors& f, const Tensor& cos, const Tensor& sin,
                     int64_t heads_per_block) {
  T6_CHECK(y.ndim() == 4, kOp, ": y must be (B, T, H, D), got ", y.shape().to_string());
  const int64_t B = y.size(0), T = y.size(1), H = y.size(2), D = y.size(3);
  T6_CHECK(D >= 2 && D <= kMaxHeadDim && D % 2 == 0, kOp, ": head dim ", D, " is not an even number in 2..",
           kMaxHeadDim);
  T6_CHECK(f.A_q.ndim() == 4 && f.A_k.ndim() == 4 && f.A_v.ndim() == 4, kOp, ": the A factors must be (B, T, H, rank)");
  const int64_t Rq = f.A_q.size(3), Rk = f.A_k.size(3), Rv = f.A_v.size(3);
  T6_CHECK(Rq >= 1 && Rk >= 1 && Rv >= 1, kOp, ": every rank must be at least 1");
  require_shape(f.A_q, Shape{B, T, H, Rq}, "A_q");
  require_shape(f.B_q, Shape{B, T, Rq, D}, "B_q");
  require_shape(f.A_k, Shape{B, T, H, Rk}, "A_k");
  require_shape(f.B_k, Shape{B, T, Rk, D}, "B_k");
  require_shape(f.A_v, Shape{B, T, H, Rv}, "A_v");
  require_shape(f.B_v, Shape{B, T, Rv, D}, "B_v");
  T6_CHECK(lse.numel() == B * H * T && lse.dtype() == DType::F32, kOp, ": lse must be B·H·T = ", B * H * T,
           " F32 elements");
  require_device(kOp, {&lse});
  T6_CHECK(cos.ndim() == 2 && cos.size(0) >= T && 2 * cos.size(1) == D && sin.shape() == cos.shape(), kOp,
           ": tables ", cos.shape().to_string(), " do not cover sequence length ", T, " and head dim ", D);
  T6_CHECK(heads_per_block >= 0, kOp, ": heads_per_block ", heads_per_block, " is negative");
  const int64_t group = heads_per_block == 0 || heads_per_block > H ? H : heads_per_block;
  return {B, T, H, D, int((D + 15) / 16 * 16), float(1.0 / std::sqrt(double(D))), float_ref(kOp, cos),
          float_ref(kOp, sin), group};
}

FusedFactors fused_factors(const TpaFactors& f) {
  auto factor = [](const Tensor& A, const Tensor& B, bool rotate) {
    return TpaFactor{float_ref(kOp, A), float_ref(kOp, B), A.size(3), 1.0f / float(A.size(3)), rotate};
  };
  return {factor(f.A_q, f.B_q, true), factor(f.A_k, f.B_k, true), factor(f.A_v, f.B_v, false)};
}

size_t shared_memory_limit() {
  int device = 0, limit = 0;
  T6_CUDA_CHECK(cudaGetDevice(&device));
  T6_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return size_t(limit);
}

// Opts the kernel into shared_bytes of dynamic shared memory, or says which shape needs more than
// the GPU has (the materialised path takes any shape).
template <class Kernel>
void reserve_shared(Kernel kernel, const char* name, size_t shared_bytes) {
  const size_t limit = shared_memory_limit();
  T6_CHECK(shared_bytes <= limit, kOp, ": ", name, " needs ", shared_bytes,
           " bytes of shared memory per block for this head dim and rank, the GPU has ", limit,
           "; use TpaAttentionPath::Materialised");
  T6_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
}

// The forward's head group: as many heads as asked (all by default) that fit in shared memory with
// the B̃_k / B̃_v stage, else one head at a time building k and v from global memory.
struct ForwardPlan {
  int64_t heads_per_block;
  bool staged;
  size_t shared_bytes;
};

ForwardPlan plan_forward(const TpaShape& s, const FusedFactors& f) {
  const size_t limit = shared_memory_limit();
  auto bytes = [&](int64_t heads, bool staged) {
    return FusedForwardLayout(s.padded_dim, heads, s.D, f.k.rank, f.v.rank, staged).plan.bytes;
  };
  if (bytes(1, true) > limit) return {1, false, bytes(1, false)};
  int64_t heads = 1;
  while (heads < s.heads_per_block && bytes(heads + 1, true) <= limit) ++heads;
  return {heads, true, bytes(heads, true)};
}

}  // namespace

void tpa_attention_fused_forward(Tensor y, Tensor lse, const TpaFactors& factors, const Tensor& cos, const Tensor& sin,
                                 int64_t heads_per_block) {
  const TpaShape s = check_fused(y, lse, factors, cos, sin, heads_per_block);
  const FusedFactors f = fused_factors(factors);
  const HeadTensor y_heads{float_ref(kOp, y), s.T, s.H, s.D};
  if (s.B * s.T * s.H == 0) return;
  const ForwardPlan plan = plan_forward(s, f);
  TpaShape shape = s;
  shape.heads_per_block = plan.heads_per_block;
  reserve_shared(tpa_fused_forward_kernel, "tpa_fused_forward_kernel", plan.shared_bytes);
  const dim3 grid(unsigned((s.T + kTile - 1) / kTile), unsigned((s.H + plan.heads_per_block - 1) / plan.heads_per_block),
                  unsigned(s.B));
  T6_LAUNCH(tpa_fused_forward_kernel, grid, kAttentionThreads, plan.shared_bytes, cuda_context().stream())(
      y_heads, lse.data<float>(), f, shape, plan.staged);
  T6_CUDA_CHECK_LAUNCH("tpa_fused_forward_kernel");
}

void tpa_attention_fused_backward(const TpaFactors& gradients, const Tensor& dy, const Tensor& y, const Tensor& lse,
                                  const TpaFactors& factors, const Tensor& cos, const Tensor& sin) {
  const TpaShape s = check_fused(y, lse, factors, cos, sin, 0);
  require_shape(dy, y.shape(), "dy");
  require_shape(gradients.A_q, factors.A_q.shape(), "dA_q");
  require_shape(gradients.B_q, factors.B_q.shape(), "dB_q");
  require_shape(gradients.A_k, factors.A_k.shape(), "dA_k");
  require_shape(gradients.B_k, factors.B_k.shape(), "dB_k");
  require_shape(gradients.A_v, factors.A_v.shape(), "dA_v");
  require_shape(gradients.B_v, factors.B_v.shape(), "dB_v");
  const FusedFactors f = fused_factors(factors);
  const FusedGradients g{float_ref(kOp, gradients.A_q), float_ref(kOp, gradients.B_q), float_ref(kOp, gradients.A_k),
                         float_ref(kOp, gradients.B_k), float_ref(kOp, gradients.A_v), float_ref(kOp, gradients.B_v)};
  const FusedOutputs o{HeadTensor{float_ref(kOp, y), s.T, s.H, s.D}, HeadTensor{float_ref(kOp, dy), s.T, s.H, s.D},
                       lse.data<float>()};
  if (s.B * s.T == 0) return;
  // Every factor gradient is written even for H = 0 (dA is empty then, dB zero).
  const dim3 grid(unsigned((s.T + kTile - 1) / kTile), 1, unsigned(s.B));
  const size_t dkdv_bytes = FusedBackwardLayout(s.padded_dim, kDk | kDv, s.D, f.k.rank, f.v.rank).bytes();
  reserve_shared(tpa_fused_dkdv_kernel, "tpa_fused_dkdv_kernel", dkdv_bytes);
  const size_t dq_bytes = FusedBackwardLayout(s.padded_dim, kDq, s.D, f.q.rank, 0).bytes();
  reserve_shared(tpa_fused_dq_kernel, "tpa_fused_dq_kernel", dq_bytes);
  T6_LAUNCH(tpa_fused_dkdv_kernel, grid, kAttentionThreads, dkdv_bytes, cuda_context().stream())(g, o, f, s);
  T6_CUDA_CHECK_LAUNCH("tpa_fused_dkdv_kernel");
  T6_LAUNCH(tpa_fused_dq_kernel, grid, kAttentionThreads, dq_bytes, cuda_context().stream())(g, o, f, s);
  T6_CUDA_CHECK_LAUNCH("tpa_fused_dq_kernel");
}

}  // namespace t6::ops::cuda
