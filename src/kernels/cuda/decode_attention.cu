// Decode attention on the GPU (kernels/ops.h): split-KV over the generation cache. Each piece of a
// row (kernels/decode_pieces.h: whole tiles, as many as the partial states allow) is one thread
// block, which walks its positions in tiles held in shared memory as fp32 (a BF16 cache is widened
// as it is loaded) with an online softmax per head; a piece that is its whole row writes y, the
// others leave (maximum, sum,
// unnormalised output) per head in the workspace's partials, and a second kernel merges a row's
// pieces by their log-sum-exp in piece order. Every sum runs in a fixed order and nothing is atomic,
// so a call repeats bit for bit.
// TPA over the factor cache (docs/MODEL.md 1.4) in the factorised order, per tile:
//   pairs (t·R + r', r) = B̃_k[t, r'] · B̃_q[r]                    (T6; KVonly mixes q̃ straight in)
//   s (t, h)            = scale · Σ_r' A_k[t, r', h] · Σ_r pairs(t·R + r', r) · A_q[h, r]
//   acc (h, ·)         += Σ_{t, r'} (p(t, h) · A_v[t, r', h] / R) · B_v[t, r', ·]
// It never forms k or v: it reads (Rk + Rv)(H + D) numbers per cached position.
#include <algorithm>
#include <cfloat>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/attention_tiles.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/decode_rows.cuh"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/dynamic_shared.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/shape_checks.h"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;
// Cache positions per shared-memory tile (fewer where they do not fit): the pieces' unit.
constexpr int kMaxTileTokens = int(kDeviceDecodeTileTokens);

// One piece's online softmax in shared memory: per head the running maximum, sum and the rescale of
// the last tile; acc (heads × width) the unnormalised output.
struct PieceState {
  float *max, *sum, *rescale, *acc;
  int heads, width;
};

__device__ void reset(const PieceState& state) {
  for (int h = threadIdx.x; h < state.heads; h += blockDim.x) state.max[h] = -FLT_MAX, state.sum[h] = 0;
  for (int i = threadIdx.x; i < state.heads * state.width; i += blockDim.x) state.acc[i] = 0;
}

// A tile's scores s (n tokens × heads) become exp(s − new maximum) in place, summed into each head's
// running sum; rescale holds what acc must be multiplied by (0 before the first tile). Then a barrier.
__device__ void absorb(const PieceState& state, float* scores, int n) {
  for (int h = threadIdx.x; h < state.heads; h += blockDim.x) {
    const float old_max = state.max[h];
    float new_max = old_max;
    for (int t = 0; t < n; ++t) new_max = fmaxf(new_max, scores[t * state.heads + h]);
    const float rescale = old_max == -FLT_MAX ? 0.0f : expf(old_max - new_max);
    float sum = state.sum[h] * rescale;
    for (int t = 0; t < n; ++t) {
      const float p = expf(scores[t * state.heads + h] - new_max);
      scores[t * state.heads + h] = p;
      sum += p;
    }
    state.max[h] = new_max, state.sum[h] = sum, state.rescale[h] = rescale;
  }
  __syncthreads();
}

// The piece's result: y (heads × width) of its row when the piece is the whole row, else its state
// as the partial (maximum, sum, acc) of the CPU op's layout.
__device__ void finish(const PieceState& state, FloatRef y, float* partials, const DecodeRowChunk& chunk, int r,
                       int piece) {
  const int64_t row = chunk.first + r, outputs = int64_t(state.heads) * state.width;
  if (chunk.pieces[r] == 1) {
    for (int i = threadIdx.x; i < outputs; i += blockDim.x) y.store(row * outputs + i, state.acc[i] / state.sum[i / state.width]);
    return;
  }
  float* partial = partials + (row * chunk.max_pieces + piece) * (outputs + 2 * state.heads);
  for (int h = threadIdx.x; h < state.heads; h += blockDim.x) partial[h] = state.max[h], partial[state.heads + h] = state.sum[h];
  for (int i = threadIdx.x; i < outputs; i += blockDim.x) partial[2 * state.heads + i] = state.acc[i];
}

// count numbers of x from `offset` into shared memory as fp32.
__device__ __forceinline__ void load_rows(float* dst, const FloatRef& x, int64_t offset, int count) {
  for (int i = threadIdx.x; i < count; i += blockDim.x) dst[i] = x.load(offset + i);
}

// Merges row r's pieces (when it was cut) in piece order: y = Σ_p acc_p·w_p / Σ_p sum_p·w_p with
// w_p = exp(max_p − the largest max_p), per head, as the CPU op does.
__global__ void merge_pieces_kernel(FloatRef y, const float* partials, int heads, int width, DecodeRowChunk chunk) {
  const int r = blockIdx.x, pieces = chunk.pieces[r];
  if (pieces == 1) return;
  const int64_t row = chunk.first + r, outputs = int64_t(heads) * width, stride = outputs + 2 * heads;
  const float* first = partials + row * chunk.max_pieces * stride;
  for (int i = threadIdx.x; i < outputs; i += blockDim.x) {
    const int h = i / width;
    float overall = -FLT_MAX;
    for (int p = 0; p < pieces; ++p) overall = fmaxf(overall, first[p * stride + h]);
    float sum = 0, value = 0;
    for (int p = 0; p < pieces; ++p) {
      const float weight = expf(first[p * stride + h] - overall);
      sum += first[p * stride + heads + h] * weight;
      value += first[p * stride + 2 * heads + i] * weight;
    }
    y.store(row * outputs + i, value / sum);
  }
}

// ---- TPA over the factor cache --------------------------------------------------------------------

struct TpaDecodeArgs {
  FloatRef y, A_q, B_q, q;      // y (N, H, D); the query: A_q (N, H, Rq) and B̃_q (N, Rq, D), or q̃ (N, H, D)
  FloatRef A_k, B_k, A_v, B_v;  // (slots, T, R, H) and (slots, T, R, D)
  float* partials;
  int H, D, R, Rq, tile;        // Rq 0: KVonly's q̃
  int64_t max_context;
  float scale;                  // 1 / (Rq·R·sqrt(D)), or 1 / (R·sqrt(D)) for q̃
};

// The block's shared memory, laid out the same way on the host (to size the launch) and in the kernel.
struct TpaDecodeLayout {
  SharedLayout plan;
  size_t query_a, query_b, A_k, B_k, A_v, B_v, pairs, scores, acc, max, sum, rescale;
  __host__ __device__ TpaDecodeLayout(int H, int D, int R, int Rq, int tile) {
    query_a = plan.add<float>(Rq > 0 ? H * Rq : H * D);  // A_q, or q̃
    query_b = plan.add<float>(Rq * D);                    // B̃_q
    A_k = plan.add<float>(tile * R * H), B_k = plan.add<float>(tile * R * D);
    A_v = plan.add<float>(tile * R * H), B_v = plan.add<float>(tile * R * D);
    pairs = plan.add<float>(tile * R * Rq);
    scores = plan.add<float>(tile * H);
    acc = plan.add<float>(H * D);
    max = plan.add<float>(H), sum = plan.add<float>(H), rescale = plan.add<float>(H);
  }
};

__global__ void tpa_decode_kernel(TpaDecodeArgs a, DecodeRowChunk chunk) {
  const int r = blockIdx.y, piece = blockIdx.x;
  if (piece >= chunk.pieces[r]) return;  // the whole block leaves, before any barrier
  T6_DYNAMIC_SHARED(shared);
  const TpaDecodeLayout layout(a.H, a.D, a.R, a.Rq, a.tile);
  float* const query_a = shared_region<float>(shared, layout.query_a);
  float* const query_b = shared_region<float>(shared, layout.query_b);
  float* const A_k = shared_region<float>(shared, layout.A_k);
  float* const B_k = shared_region<float>(shared, layout.B_k);
  float* const A_v = shared_region<float>(shared, layout.A_v);
  float* const B_v = shared_region<float>(shared, layout.B_v);
  float* const pairs = shared_region<float>(shared, layout.pairs);
  float* const scores = shared_region<float>(shared, layout.scores);
  const PieceState state{shared_region<float>(shared, layout.max), shared_region<float>(shared, layout.sum),
                         shared_region<float>(shared, layout.rescale), shared_region<float>(shared, layout.acc), a.H,
                         a.D};
  const int H = a.H, D = a.D, R = a.R, Rq = a.Rq;
  const int64_t row = chunk.first + r;
  if (Rq > 0) {
    load_rows(query_a, a.A_q, row * H * Rq, H * Rq);
    load_rows(query_b, a.B_q, row * Rq * D, Rq * D);
  } else {
    load_rows(query_a, a.q, row * H * D, H * D);
  }
  reset(state);
  const float inv_rank = 1.0f / float(R);
  const int begin = piece * chunk.piece_tokens[r], end = min(chunk.length[r], begin + chunk.piece_tokens[r]);
  for (int at = begin; at < end; at += a.tile) {
    const int n = min(a.tile, end - at);
    const int64_t token = int64_t(chunk.slot[r]) * a.max_context + at;
    __syncthreads();  // the previous tile (and the query and state set-up) is done with
    load_rows(A_k, a.A_k, token * R * H, n * R * H);
    load_rows(B_k, a.B_k, token * R * D, n * R * D);
    load_rows(A_v, a.A_v, token * R * H, n * R * H);
    load_rows(B_v, a.B_v, token * R * D, n * R * D);
    __syncthreads();
    if (Rq > 0) {
      for (int i = threadIdx.x; i < n * R * Rq; i += blockDim.x) {
        const float* key = B_k + (i / Rq) * D;
        const float* query = query_b + (i % Rq) * D;
        float dot = 0;
        for (int j = 0; j < D; ++j) dot += key[j] * query[j];
        pairs[i] = dot;
      }
      __syncthreads();
    }
    for (int i = threadIdx.x; i < n * H; i += blockDim.x) {
      const int t = i / H, h = i % H;
      float s = 0;
      for (int k = 0; k < R; ++k) {
        const int j = t * R + k;
        float mixed = 0;
        if (Rq > 0) {
          for (int q = 0; q < Rq; ++q) mixed += pairs[j * Rq + q] * query_a[h * Rq + q];
        } else {
          for (int d = 0; d < D; ++d) mixed += B_k[j * D + d] * query_a[h * D + d];
        }
        s += A_k[j * H + h] * mixed;
      }
      scores[i] = s * a.scale;
    }
    __syncthreads();
    absorb(state, scores, n);
    for (int i = threadIdx.x; i < H * D; i += blockDim.x) {
      const int h = i / D, d = i % D;
      float value = state.acc[i] * state.rescale[h];
      for (int j = 0; j < n * R; ++j) value += scores[(j / R) * H + h] * A_v[j * H + h] * inv_rank * B_v[j * D + d];
      state.acc[i] = value;
    }
  }
  __syncthreads();
  finish(state, a.y, a.partials, chunk, r, piece);
}

// ---- MHA, GQA and MLA's absorbed attention over cached keys and values ---------------------------

struct KvDecodeArgs {
  FloatRef y, q, k, v;  // y (N, H, Dv), q (N, H, Dk), k (slots, T, Hkv, Dk), v (slots, T, Hkv, Dv)
  float* partials;
  int H, kv_heads, Dk, Dv, tile;
  bool v_is_k;          // MLA: the latent row is its own value, loaded once
  int64_t max_context;
  float scale;          // 1 / sqrt(Dk)
};

struct KvDecodeLayout {
  SharedLayout plan;
  size_t q, k, v, scores, acc, max, sum, rescale;
  __host__ __device__ KvDecodeLayout(int H, int kv_heads, int Dk, int Dv, bool v_is_k, int tile) {
    q = plan.add<float>(H * Dk);
    k = plan.add<float>(tile * kv_heads * Dk);
    v = plan.add<float>(v_is_k ? 0 : tile * kv_heads * Dv);
    scores = plan.add<float>(tile * H);
    acc = plan.add<float>(H * Dv);
    max = plan.add<float>(H), sum = plan.add<float>(H), rescale = plan.add<float>(H);
  }
};

__global__ void kv_decode_kernel(KvDecodeArgs a, DecodeRowChunk chunk) {
  const int r = blockIdx.y, piece = blockIdx.x;
  if (piece >= chunk.pieces[r]) return;  // the whole block leaves, before any barrier
  T6_DYNAMIC_SHARED(shared);
  const KvDecodeLayout layout(a.H, a.kv_heads, a.Dk, a.Dv, a.v_is_k, a.tile);
  float* const queries = shared_region<float>(shared, layout.q);
  float* const keys = shared_region<float>(shared, layout.k);
  float* const values = a.v_is_k ? keys : shared_region<float>(shared, layout.v);
  float* const scores = shared_region<float>(shared, layout.scores);
  const PieceState state{shared_region<float>(shared, layout.max), shared_region<float>(shared, layout.sum),
                         shared_region<float>(shared, layout.rescale), shared_region<float>(shared, layout.acc), a.H,
                         a.Dv};
  const int H = a.H, Hkv = a.kv_heads, Dk = a.Dk, Dv = a.Dv, group = a.H / a.kv_heads;
  load_rows(queries, a.q, (chunk.first + r) * int64_t(H) * Dk, H * Dk);
  reset(state);
  const int begin = piece * chunk.piece_tokens[r], end = min(chunk.length[r], begin + chunk.piece_tokens[r]);
  for (int at = begin; at < end; at += a.tile) {
    const int n = min(a.tile, end - at);
    const int64_t token = int64_t(chunk.slot[r]) * a.max_context + at;
    __syncthreads();  // the previous tile (and the query and state set-up) is done with
    load_rows(keys, a.k, token * Hkv * Dk, n * Hkv * Dk);
    if (!a.v_is_k) load_rows(values, a.v, token * Hkv * Dv, n * Hkv * Dv);
    __syncthreads();
    for (int i = threadIdx.x; i < n * H; i += blockDim.x) {
      const int t = i / H, h = i % H;
      const float* key = keys + (t * Hkv + h / group) * Dk;
      const float* query = queries + h * Dk;
      float dot = 0;
      for (int j = 0; j < Dk; ++j) dot += query[j] * key[j];
      scores[i] = dot * a.scale;
    }
    __syncthreads();
    absorb(state, scores, n);
    for (int i = threadIdx.x; i < H * Dv; i += blockDim.x) {
      const int h = i / Dv, j = i % Dv, kv = h / group;
      float value = state.acc[i] * state.rescale[h];
      for (int t = 0; t < n; ++t) value += scores[t * H + h] * values[(t * Hkv + kv) * Dv + j];
      state.acc[i] = value;
    }
  }
  __syncthreads();
  finish(state, a.y, a.partials, chunk, r, piece);
}

// How many partial states the workspace holds for rows of `heads` heads of `width` numbers.
int64_t partial_states(const DecodeWorkspace& workspace, int64_t heads, int64_t width) {
  return workspace.partials.numel() / decode_partial_elements(heads, width);
}

// The most pieces a row of the chunk has: the grid's width (a cut row needs the merge).
unsigned most_pieces(const DecodeRowChunk& chunk) {
  int most = 1;
  for (int r = 0; r < chunk.count; ++r) most = std::max(most, chunk.pieces[r]);
  return unsigned(most);
}

// The largest tile (a power of two up to kMaxTileTokens) whose layout fits the block's shared memory.
template <class Layout>
int fitting_tile(const char* op, Layout layout_of) {
  const size_t limit = size_t(cuda_context().shared_memory_per_block());
  for (int tile = kMaxTileTokens; tile >= 1; tile /= 2)
    if (layout_of(tile).plan.bytes <= limit) return tile;
  fail(str(op, ": one cache position needs ", layout_of(1).plan.bytes, " bytes of shared memory, more than the ",
           limit, " a block may have"));
}

}  // namespace

void tpa_decode_attention(Tensor y, const TpaDecodeQuery& query, const TpaFactorCache& cache, const DecodeRows& rows,
                          TpaDecodeOrder order, const DecodeWorkspace& workspace) {
  const char* op = "tpa_decode_attention";
  const TpaDecodeDims dims = check_tpa_decode(y, query, cache, rows);
  T6_CHECK(order == TpaDecodeOrder::factorised, op, ": the CUDA backend runs the factorised order only");
  check_decode_partials(workspace, decode_partial_elements(dims.H, dims.D));
  require_device(op, {&workspace.partials});
  TpaDecodeArgs a{};
  a.y = float_ref(op, y);
  if (dims.Rq > 0) a.A_q = float_ref(op, query.A_q), a.B_q = float_ref(op, query.B_q);
  else a.q = float_ref(op, query.q);
  a.A_k = float_ref(op, cache.A_k), a.B_k = float_ref(op, cache.B_k);
  a.A_v = float_ref(op, cache.A_v), a.B_v = float_ref(op, cache.B_v);
  a.partials = workspace.partials.data<float>();
  a.H = int(dims.H), a.D = int(dims.D), a.R = int(dims.R), a.Rq = int(dims.Rq);
  a.max_context = cache.A_k.size(1);
  a.scale = 1.0f / (float(dims.Rq > 0 ? dims.Rq * dims.R : dims.R) * sqrtf(float(dims.D)));
  a.tile = fitting_tile(op, [&](int tile) { return TpaDecodeLayout(a.H, a.D, a.R, a.Rq, tile); });
  const size_t shared_bytes = TpaDecodeLayout(a.H, a.D, a.R, a.Rq, a.tile).plan.bytes;
  T6_CUDA_CHECK(cudaFuncSetAttribute(tpa_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  const int64_t max_pieces = decode_max_pieces(dims.N, partial_states(workspace, dims.H, dims.D));
  for_row_chunks(rows, max_pieces, [&](const DecodeRowChunk& chunk) {
    const dim3 grid(most_pieces(chunk), unsigned(chunk.count));
    T6_LAUNCH(tpa_decode_kernel, grid, kThreads, shared_bytes, cuda_context().stream())(a, chunk);
    T6_CUDA_CHECK_LAUNCH("tpa_decode_kernel");
    if (grid.x == 1) return;
    T6_LAUNCH(merge_pieces_kernel, unsigned(chunk.count), kThreads, 0, cuda_context().stream())(a.y, a.partials, a.H,
                                                                                               a.D, chunk);
    T6_CUDA_CHECK_LAUNCH("merge_pieces_kernel");
  });
}

void kv_decode_attention(Tensor y, const Tensor& q, const Tensor& k, const Tensor& v, const DecodeRows& rows,
                         const DecodeWorkspace& workspace) {
  const char* op = "kv_decode_attention";
  const KvDecodeDims dims = check_kv_decode(y, q, k, v, rows);
  check_decode_partials(workspace, decode_partial_elements(dims.H, dims.Dv));
  require_device(op, {&workspace.partials});
  KvDecodeArgs a{};
  a.y = float_ref(op, y), a.q = float_ref(op, q), a.k = float_ref(op, k), a.v = float_ref(op, v);
  a.partials = workspace.partials.data<float>();
  a.H = int(dims.H), a.kv_heads = int(dims.kv_heads), a.Dk = int(dims.Dk), a.Dv = int(dims.Dv);
  a.v_is_k = k.raw() == v.raw() && dims.Dk == dims.Dv;
  a.max_context = k.size(1);
  a.scale = 1.0f / sqrtf(float(dims.Dk));
  a.tile = fitting_tile(op, [&](int tile) { return KvDecodeLayout(a.H, a.kv_heads, a.Dk, a.Dv, a.v_is_k, tile); });
  const size_t shared_bytes = KvDecodeLayout(a.H, a.kv_heads, a.Dk, a.Dv, a.v_is_k, a.tile).plan.bytes;
  T6_CUDA_CHECK(cudaFuncSetAttribute(kv_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  const int64_t max_pieces = decode_max_pieces(dims.N, partial_states(workspace, dims.H, dims.Dv));
  for_row_chunks(rows, max_pieces, [&](const DecodeRowChunk& chunk) {
    const dim3 grid(most_pieces(chunk), unsigned(chunk.count));
    T6_LAUNCH(kv_decode_kernel, grid, kThreads, shared_bytes, cuda_context().stream())(a, chunk);
    T6_CUDA_CHECK_LAUNCH("kv_decode_kernel");
    if (grid.x == 1) return;
    T6_LAUNCH(merge_pieces_kernel, unsigned(chunk.count), kThreads, 0, cuda_context().stream())(a.y, a.partials, a.H,
                                                                                               a.Dv, chunk);
    T6_CUDA_CHECK_LAUNCH("merge_pieces_kernel");
  });
}

}  // namespace t6::ops::cuda
