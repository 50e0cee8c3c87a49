// CPU decode attention (kernels/ops.h): rows cut into pieces of whole blocks, pieces spread over the
// team, each block's work done as the small matrix products of decode_tiles.h, and the pieces of a
// cut row merged by their log-sum-exp. A BF16 cache block is widened into the thread's buffer first,
// so the products always run on fp32.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/arena.h"
#include "core/bf16.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/cpu/decode_tiles.h"
#include "kernels/decode_pieces.h"
#include "kernels/shape_checks.h"
#include "kernels/ops.h"

namespace t6::ops {

using cpu::decode::combine_rows;
using cpu::decode::kLanes;
using cpu::decode::Lanes;
using cpu::decode::load;
using cpu::decode::OnlineSoftmax;
using cpu::decode::row_dots;
using cpu::decode::store;
using cpu::decode::weighted_rows;
using cpu::decode::whole_lanes;

namespace {

// A call spreads its pieces over the team only past this many (position × head) pairs: below it,
// waking the team costs more than the work.
constexpr int64_t kParallelWork = int64_t(1) << 16;

// The per-thread state of one piece, carved by the code that also sizes it.
OnlineSoftmax carve_state(ScratchCursor& cursor, int64_t heads, int64_t width) {
  OnlineSoftmax state{};
  state.heads = heads, state.padded = whole_lanes(heads), state.width = width;
  state.max = cursor.take({state.padded}).data<float>();
  state.sum = cursor.take({state.padded}).data<float>();
  state.rescale = cursor.take({state.padded}).data<float>();
  state.acc = cursor.take({heads, width}).data<float>();
  return state;
}

// A block's scores (block_tokens × padded heads), with the padding heads' columns zeroed once so that
// they stay finite (no pass writes them but the softmax's).
float* take_scores(ScratchCursor& cursor, const OnlineSoftmax& state, int64_t block_tokens) {
  float* scores = cursor.take({block_tokens, state.padded}).data<float>();
  for (int64_t t = 0; t < block_tokens; ++t) std::fill(scores + t * state.padded + state.heads, scores + (t + 1) * state.padded, 0.0f);
  return scores;
}

void check_workspace(const DecodeWorkspace& workspace, int64_t per_thread, int64_t partial) {
  T6_CHECK(workspace.per_thread.dtype() == DType::F32 && workspace.per_thread.ndim() == 2 &&
               workspace.per_thread.size(1) >= per_thread,
           "decode attention: scratch of ", workspace.per_thread.ndim() == 2 ? workspace.per_thread.size(1) : 0,
           " elements a thread, ", per_thread, " needed");
  check_decode_partials(workspace, partial);
}

// Runs attend(row, begin, end, state, thread_scratch) over every piece of every row and writes y
// (N, H, Dv): a piece that is its whole row normalises straight into y, the others leave their
// state in the workspace's partials, which are merged afterwards in piece order.
template <class Attend>
void for_pieces(const Tensor& y, const DecodeRows& rows, const DecodeWorkspace& workspace, int64_t heads,
                int64_t width, Attend attend) {
  const int64_t N = rows.length.numel(), threads = workspace.per_thread.size(0);
  const int64_t* lengths = rows.length.data<int64_t>();
  const int64_t max_pieces = decode_max_pieces(N);
  const int64_t partial_stride = decode_partial_elements(heads, width);
  int64_t work = 0;
  for (int64_t n = 0; n < N; ++n) work += lengths[n] * heads;
  float* out = y.data<float>();
#pragma omp parallel for schedule(dynamic) num_threads(int(threads)) if (work >= kParallelWork)
  for (int64_t item = 0; item < N * max_pieces; ++item) {
    const int64_t n = item / max_pieces, piece = item % max_pieces;
    const DecodeCut cut = decode_cut(lengths[n], rows.block_tokens, max_pieces);
    if (piece >= cut.pieces) continue;
    const int64_t thread = omp_get_thread_num();
    ScratchCursor cursor(workspace.per_thread.rows(thread, thread + 1).view({workspace.per_thread.size(1)}));
    const OnlineSoftmax state = carve_state(cursor, heads, width);
    state.reset();
    const int64_t begin = piece * cut.piece_tokens, end = std::min(lengths[n], begin + cut.piece_tokens);
    attend(n, begin, end, state, cursor);
    if (cut.pieces == 1) {
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < width; ++j) out[(n * heads + h) * width + j] = state.acc[h * width + j] / state.sum[h];
    } else {
      float* partial = workspace.partials.data<float>() + (n * max_pieces + piece) * partial_stride;
      std::copy_n(state.max, heads, partial);
      std::copy_n(state.sum, heads, partial + heads);
      std::copy_n(state.acc, heads * width, partial + 2 * heads);
    }
  }
  for (int64_t n = 0; n < N; ++n) {
    const DecodeCut cut = decode_cut(lengths[n], rows.block_tokens, max_pieces);
    if (cut.pieces == 1) continue;
    const float* first = workspace.partials.data<float>() + n * max_pieces * partial_stride;
    for (int64_t h = 0; h < heads; ++h) {
      float overall = -INFINITY;
      for (int64_t p = 0; p < cut.pieces; ++p) overall = std::max(overall, first[p * partial_stride + h]);
      float sum = 0;
      float* y_head = out + (n * heads + h) * width;
      std::fill(y_head, y_head + width, 0.0f);
      for (int64_t p = 0; p < cut.pieces; ++p) {
        const float* partial = first + p * partial_stride;
        const float weight = std::exp(partial[h] - overall);
        sum += partial[heads + h] * weight;
        for (int64_t j = 0; j < width; ++j) y_head[j] += partial[2 * heads + h * width + j] * weight;
      }
      for (int64_t j = 0; j < width; ++j) y_head[j] /= sum;
    }
  }
}

// Positions [begin, begin + n) of one slot's cache tensor (slots, T, rows, cols) as fp32: the cache
// itself, or for BF16 its numbers widened into `buffer`.
const float* block_of(const Tensor& field, int64_t slot, int64_t begin, int64_t n, float* buffer) {
  const int64_t token = field.size(2) * field.size(3), offset = (slot * field.size(1) + begin) * token;
  if (field.dtype() == DType::F32) return field.data<float>() + offset;
  const uint16_t* bits = static_cast<const uint16_t*>(field.raw()) + offset;
  for (int64_t i = 0; i < n * token; ++i) buffer[i] = bf16_bits_to_float(bits[i]);
  return buffer;
}

float* take_block(ScratchCursor& cursor, DType dtype, int64_t block_tokens, int64_t token_numel) {
  return dtype == DType::F32 ? nullptr : cursor.take({block_tokens, token_numel}).data<float>();
}

// ---- plain attention (MHA, GQA, MLA; TPA's materialised order) ----------------------------------

// One block of n tokens: queries (H, Dk); k (n, Hkv, Dk) and v (n, Hkv, Dv) rows in fp32.
T6_DECODE_INLINE void attend_plain_block(const OnlineSoftmax& state, float* scores, const float* queries,
                                         const float* k, const float* v, int64_t n, int64_t kv_heads,
                                         int64_t key_width) {
  const int64_t H = state.heads, Hp = state.padded, group = H / kv_heads, Dv = state.width;
  const float scale = 1.0f / std::sqrt(float(key_width));
  // Runs of tokens whose rows of all KV heads fit in 16 KiB: each KV head's pass over a run finds it
  // in L1, and memory is read token after token instead of in one strided stream per head.
  const int64_t run = std::max<int64_t>(8, 4096 / (kv_heads * std::max(key_width, Dv)));
  for (int64_t t = 0; t < n; t += run)
    for (int64_t kv = 0; kv < kv_heads; ++kv)
      row_dots(scores + t * Hp + kv * group, Hp, queries + kv * group * key_width, key_width, group,
               k + (t * kv_heads + kv) * key_width, kv_heads * key_width, std::min(run, n - t), key_width, scale);
  state.absorb(scores, n);
  for (int64_t t = 0; t < n; t += run)
    for (int64_t kv = 0; kv < kv_heads; ++kv)
      weighted_rows(state.acc + kv * group * Dv, Dv, scores + t * Hp + kv * group, Hp, group,
                    v + (t * kv_heads + kv) * Dv, kv_heads * Dv, std::min(run, n - t), Dv);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void attend_kv_piece(
    const OnlineSoftmax& state, ScratchCursor& cursor, const float* queries, const Tensor& k, const Tensor& v,
    int64_t slot, int64_t begin, int64_t end, int64_t block_tokens) {
  const int64_t kv_heads = k.size(2), Dk = k.size(3), Dv = v.size(3);
  float* scores = take_scores(cursor, state, block_tokens);
  float* k_buffer = take_block(cursor, k.dtype(), block_tokens, kv_heads * Dk);
  float* v_buffer = take_block(cursor, v.dtype(), block_tokens, kv_heads * Dv);
  const bool shared = k.raw() == v.raw();
  for (int64_t at = begin; at < end; at += block_tokens) {
    const int64_t n = std::min(block_tokens, end - at);
    const float* k_rows = block_of(k, slot, at, n, k_buffer);
    const float* v_rows = shared ? k_rows : block_of(v, slot, at, n, v_buffer);
    attend_plain_block(state, scores, queries, k_rows, v_rows, n, kv_heads, Dk);
  }
}

// ---- TPA over the factor cache ------------------------------------------------------------------

struct FactorBlocks {
  const float *A_k, *B_k, *A_v, *B_v;
};
struct FactorBuffers {
  float *A_k, *B_k, *A_v, *B_v;  // null for an F32 cache
};
FactorBuffers take_factor_buffers(ScratchCursor& cursor, const TpaFactorCache& cache, int64_t block_tokens) {
  const DType dtype = cache.A_k.dtype();
  const int64_t R = cache.A_k.size(2), H = cache.A_k.size(3), D = cache.B_k.size(3);
  return {take_block(cursor, dtype, block_tokens, R * H), take_block(cursor, dtype, block_tokens, R * D),
          take_block(cursor, dtype, block_tokens, R * H), take_block(cursor, dtype, block_tokens, R * D)};
}
FactorBlocks factor_blocks(const TpaFactorCache& cache, const FactorBuffers& buffers, int64_t slot, int64_t at,
                           int64_t n) {
  return {block_of(cache.A_k, slot, at, n, buffers.A_k), block_of(cache.B_k, slot, at, n, buffers.B_k),
          block_of(cache.A_v, slot, at, n, buffers.A_v), block_of(cache.B_v, slot, at, n, buffers.B_v)};
}

// The query of one row: T6's factors A_q (H, Rq) and B̃_q (Rq, D), or KVonly's q̃ (H, D).
struct RowQuery {
  const float *A_q, *B_q, *q;
  int64_t q_rank;
};

// out[h] = scale · Σ_{r < R} a[r·H + h] · b[r·ld_b + h] for h < H: a token's scores from its R rows of
// A_k (H long in the cache, so the last lane may not be whole: it is summed in scalars) and of
// mixed, or (R = 1) its value weights p·A_v/R.
T6_DECODE_INLINE void rank_products(float* __restrict out, const float* __restrict a, const float* __restrict b,
                                    int64_t ld_b, int64_t R, int64_t H, float scale) {
  int64_t h = 0;
  for (; h + kLanes <= H; h += kLanes) {
    Lanes sum = load(a + h) * load(b + h);
    for (int64_t r = 1; r < R; ++r) sum += load(a + r * H + h) * load(b + r * ld_b + h);
    store(out + h, sum * scale);
  }
  for (; h < H; ++h) {
    float sum = a[h] * b[h];
    for (int64_t r = 1; r < R; ++r) sum += a[r * H + h] * b[r * ld_b + h];
    out[h] = sum * scale;
  }
}

// Asks for position `token` of one slot's cache tensor to be brought into L2: the passes over a block
// ask for the next block's positions as they go, so that its first touch does not wait on memory
// (the hardware prefetcher alone left about half of the time stalled on these reads).
T6_DECODE_INLINE void prefetch_position(const Tensor& field, int64_t slot, int64_t token) {
  const int64_t bytes = field.size(2) * field.size(3) * int64_t(dtype_size(field.dtype()));
  const char* at = static_cast<const char*>(field.raw()) + (slot * field.size(1) + token) * bytes;
  for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(at + offset, 0, 2);
}

// Per block, with the block's rank-token rows j = t·R + r' (n·R of them; A_k and A_v are stored
// rank by head, so A_k[j] is the row of all heads' coefficients):
//   pairs (j, Rq)  = B̃_k[j] · B̃_q[r], as combinations of the rows of B̃_qᵀ (T6; KVonly: mixed
//                    straight from q̃)
//   mixed (j, H)   = Σ_r pairs[j][r] · A_qᵀ[r]
//   s (t, h)       = scale · Σ_r' A_k[t·R + r'][h] · mixed[t·R + r'][h]
//   weights (j, H) = p[t][h] · A_v[j][h] / R, and acc[h] += Σ_j weights[j][h] · B_v[j].
// Every pass is vectorised along its rows (Rq padded to a lane, heads padded to lanes): none sums
// across lanes.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void attend_factorised_piece(
    const OnlineSoftmax& state, ScratchCursor& cursor, const RowQuery& query, const TpaFactorCache& cache,
    int64_t slot, int64_t begin, int64_t end, int64_t block_tokens) {
  const int64_t H = state.heads, Hp = state.padded, D = state.width, R = cache.A_k.size(2), Rq = query.q_rank;
  const int64_t Rqp = whole_lanes(Rq), rows = block_tokens * R;
  float* pairs = query.A_q ? cursor.take({rows, Rqp}).data<float>() : nullptr;
  float* B_q_t = query.A_q ? cursor.take({D, Rqp}).data<float>() : nullptr;  // B̃_qᵀ, lanes along r
  float* A_q_t = query.A_q ? cursor.take({Rq, Hp}).data<float>() : nullptr;  // A_qᵀ, lanes along h
  float* mixed = cursor.take({rows, Hp}).data<float>();
  float* scores = take_scores(cursor, state, block_tokens);
  float* weights = cursor.take({rows, Hp}).data<float>();
  const FactorBuffers buffers = take_factor_buffers(cursor, cache, block_tokens);
  if (query.A_q) {
    for (int64_t r = 0; r < Rq; ++r)
      for (int64_t h = 0; h < Hp; ++h) A_q_t[r * Hp + h] = h < H ? query.A_q[h * Rq + r] : 0.0f;
    for (int64_t d = 0; d < D; ++d)
      for (int64_t r = 0; r < Rqp; ++r) B_q_t[d * Rqp + r] = r < Rq ? query.B_q[r * D + d] : 0.0f;
  }
  const float scale = 1.0f / (float(query.A_q ? Rq * R : R) * std::sqrt(float(D)));
  const float inv_rank = 1.0f / float(R);
  for (int64_t at = begin; at < end; at += block_tokens) {
    const int64_t n = std::min(block_tokens, end - at), next = std::min(block_tokens, end - at - n);
    const FactorBlocks block = factor_blocks(cache, buffers, slot, at, n);
    if (query.A_q) {
      combine_rows(pairs, Rqp, block.B_k, D, D, B_q_t, Rqp, n * R, Rqp);
      combine_rows(mixed, Hp, pairs, Rqp, Rq, A_q_t, Hp, n * R, Hp);
    } else {
      row_dots(mixed, Hp, query.q, D, H, block.B_k, D, n * R, D, 1.0f);
    }
    state.begin_block();
    for (int64_t t = 0; t < n; ++t) {
      if (t < next) prefetch_position(cache.A_k, slot, at + n + t), prefetch_position(cache.B_k, slot, at + n + t);
      rank_products(scores + t * Hp, block.A_k + t * R * H, mixed + t * R * Hp, Hp, R, H, scale);
      state.observe(scores + t * Hp);
    }
    state.raise_maximum();
    for (int64_t t = 0; t < n; ++t) {
      if (t < next) prefetch_position(cache.A_v, slot, at + n + t), prefetch_position(cache.B_v, slot, at + n + t);
      state.exponentiate(scores + t * Hp);
      for (int64_t r = 0; r < R; ++r)
        rank_products(weights + (t * R + r) * Hp, block.A_v + (t * R + r) * H, scores + t * Hp, Hp, 1, H, inv_rank);
    }
    weighted_rows(state.acc, D, weights, Hp, H, block.B_v, D, n * R, D);
  }
}

// x (H, D) = (1/R) Σ_r A(h, r) · B[r] for every head, with A(h, r) = A[h·head_stride + r·rank_stride].
T6_DECODE_INLINE void contract_heads(float* x, const float* A, int64_t head_stride, int64_t rank_stride,
                                     const float* B, int64_t H, int64_t R, int64_t D) {
  const float inv_rank = 1.0f / float(R);
  for (int64_t h = 0; h < H; ++h) {
    float* row = x + h * D;
    for (int64_t j = 0; j < D; ++j) row[j] = 0;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < D; ++j) row[j] += A[h * head_stride + r * rank_stride] * B[r * D + j];
    for (int64_t j = 0; j < D; ++j) row[j] *= inv_rank;
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void attend_materialised_piece(
    const OnlineSoftmax& state, ScratchCursor& cursor, const RowQuery& query, const TpaFactorCache& cache,
    int64_t slot, int64_t begin, int64_t end, int64_t block_tokens) {
  const int64_t H = state.heads, D = state.width, R = cache.A_k.size(2);
  float* queries = cursor.take({H, D}).data<float>();
  float* k = cursor.take({block_tokens, H * D}).data<float>();
  float* v = cursor.take({block_tokens, H * D}).data<float>();
  float* scores = take_scores(cursor, state, block_tokens);
  const FactorBuffers buffers = take_factor_buffers(cursor, cache, block_tokens);
  if (query.A_q) contract_heads(queries, query.A_q, query.q_rank, 1, query.B_q, H, query.q_rank, D);
  else std::copy_n(query.q, H * D, queries);
  for (int64_t at = begin; at < end; at += block_tokens) {
    const int64_t n = std::min(block_tokens, end - at);
    const FactorBlocks block = factor_blocks(cache, buffers, slot, at, n);
    for (int64_t t = 0; t < n; ++t) {
      contract_heads(k + t * H * D, block.A_k + t * R * H, 1, H, block.B_k + t * R * D, H, R, D);
      contract_heads(v + t * H * D, block.A_v + t * R * H, 1, H, block.B_v + t * R * D, H, R, D);
    }
    attend_plain_block(state, scores, queries, k, v, n, H, D);
  }
}

}  // namespace

int64_t decode_partial_elements(int64_t heads, int64_t value_width) { return heads * (value_width + 2); }

int64_t kv_decode_thread_elements(int64_t heads, int64_t kv_heads, int64_t key_width, int64_t value_width,
                                  int64_t block_tokens, DType cache_dtype) {
  ScratchCursor cursor;
  carve_state(cursor, heads, value_width);
  cursor.take({block_tokens, whole_lanes(heads)});
  take_block(cursor, cache_dtype, block_tokens, kv_heads * key_width);
  take_block(cursor, cache_dtype, block_tokens, kv_heads * value_width);
  return cursor.used();
}

int64_t tpa_decode_thread_elements(int64_t heads, int64_t head_dim, int64_t rank, int64_t q_rank,
                                   int64_t block_tokens, TpaDecodeOrder order, DType cache_dtype) {
  const int64_t H = heads, Hp = whole_lanes(heads), D = head_dim, R = rank;
  ScratchCursor cursor;
  carve_state(cursor, H, D);
  if (order == TpaDecodeOrder::factorised) {
    if (q_rank > 0)
      cursor.take({block_tokens * R, whole_lanes(q_rank)}), cursor.take({D, whole_lanes(q_rank)}),
          cursor.take({q_rank, Hp});
    cursor.take({block_tokens * R, Hp}), cursor.take({block_tokens, Hp}), cursor.take({block_tokens * R, Hp});
  } else {
    cursor.take({H, D}), cursor.take({block_tokens, H * D}), cursor.take({block_tokens, H * D});
    cursor.take({block_tokens, Hp});
  }
  for (int64_t token_numel : {H * R, R * D, H * R, R * D}) take_block(cursor, cache_dtype, block_tokens, token_numel);
  return cursor.used();
}

void kv_decode_attention(Tensor y, const Tensor& q, const Tensor& k, const Tensor& v, const DecodeRows& rows,
                         const DecodeWorkspace& workspace) {
  T6_CUDA_TWIN(y, kv_decode_attention(y, q, k, v, rows, workspace));
  cpu::require_host(t6_twin_routed, "kv_decode_attention", {&y, &q, &k, &v});
  const KvDecodeDims dims = check_kv_decode(y, q, k, v, rows);
  const int64_t H = dims.H, Dk = dims.Dk, kv_heads = dims.kv_heads, Dv = dims.Dv;
  check_workspace(workspace, kv_decode_thread_elements(H, kv_heads, Dk, Dv, rows.block_tokens, k.dtype()),
                  decode_partial_elements(H, Dv));
  const int64_t* slots = rows.slot.data<int64_t>();
  for_pieces(y, rows, workspace, H, Dv,
             [&](int64_t n, int64_t begin, int64_t end, const OnlineSoftmax& state, ScratchCursor& cursor) {
               attend_kv_piece(state, cursor, q.data<float>() + n * H * Dk, k, v, slots[n], begin, end,
                               rows.block_tokens);
             });
}

void tpa_decode_attention(Tensor y, const TpaDecodeQuery& query, const TpaFactorCache& cache, const DecodeRows& rows,
                          TpaDecodeOrder order, const DecodeWorkspace& workspace) {
  T6_CUDA_TWIN(y, tpa_decode_attention(y, query, cache, rows, order, workspace));
  cpu::require_host(t6_twin_routed, "tpa_decode_attention", {&y, &cache.A_k, &cache.B_k, &cache.A_v, &cache.B_v});
  const TpaDecodeDims dims = check_tpa_decode(y, query, cache, rows);
  const int64_t H = dims.H, D = dims.D, R = dims.R, Rq = dims.Rq;
  const bool factorised_query = Rq > 0;
  check_workspace(workspace, tpa_decode_thread_elements(H, D, R, Rq, rows.block_tokens, order, cache.A_k.dtype()),
                  decode_partial_elements(H, D));
  const int64_t* slots = rows.slot.data<int64_t>();
  for_pieces(y, rows, workspace, H, D,
             [&](int64_t n, int64_t begin, int64_t end, const OnlineSoftmax& state, ScratchCursor& cursor) {
               RowQuery row{};
               if (factorised_query) {
                 row.A_q = query.A_q.data<float>() + n * H * Rq;
                 row.B_q = query.B_q.data<float>() + n * Rq * D;
                 row.q_rank = Rq;
               } else {
                 row.q = query.q.data<float>() + n * H * D;
               }
               if (order == TpaDecodeOrder::factorised)
                 attend_factorised_piece(state, cursor, row, cache, slots[n], begin, end, rows.block_tokens);
               else
                 attend_materialised_piece(state, cursor, row, cache, slots[n], begin, end, rows.block_tokens);
             });
}

}  // namespace t6::ops
