#include "infer/cache_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include "core/arena.h"
#include "core/error.h"

namespace t6::infer {

const char* tpa_decode_order_name(TpaDecodeOrder order) {
  return order == TpaDecodeOrder::factorised ? "factorised" : "materialised";
}

TpaDecodeOrder tpa_decode_order_from_name(const std::string& name) {
  if (name == "factorised") return TpaDecodeOrder::factorised;
  if (name == "materialised") return TpaDecodeOrder::materialised;
  fail(str("unknown TPA decode order '", name, "' (expected factorised or materialised)"));
}

namespace {

float dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// acc[0, n) += weight · x[0, n)
void axpy(float* acc, float weight, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += weight * x[i];
}

// One call's working memory in the caller's scratch, laid out by the code that also sizes it.
struct CallScratch {
  float *max, *sum, *acc, *scores;  // per head of the range: 1, 1, width and block_tokens numbers
  float *query, *block_k, *block_v;   // materialised order only: (heads, D) and (block_tokens, heads, D) twice
};

CallScratch carve(ScratchCursor& cursor, int64_t heads, int64_t width, int64_t block_tokens, bool materialised) {
  CallScratch s{};
  s.max = cursor.take({heads}).data<float>();
  s.sum = cursor.take({heads}).data<float>();
  s.acc = cursor.take({heads, width}).data<float>();
  s.scores = cursor.take({heads, block_tokens}).data<float>();
  if (materialised) {
    s.query = cursor.take({heads, width}).data<float>();
    s.block_k = cursor.take({block_tokens, heads, width}).data<float>();
    s.block_v = cursor.take({block_tokens, heads, width}).data<float>();
  }
  return s;
}

int64_t scratch_elements(int64_t heads, int64_t width, int64_t block_tokens, bool materialised) {
  ScratchCursor measure;
  carve(measure, heads, width, block_tokens, materialised);
  return measure.used();
}

// The call's scratch, after checking that `scratch` holds it.
CallScratch call_scratch(const Tensor& scratch, HeadRange heads, int64_t width, int64_t block_tokens,
                         bool materialised) {
  const int64_t local_heads = heads.end_head - heads.first_head;
  const int64_t needed = scratch_elements(local_heads, width, block_tokens, materialised);
  T6_CHECK(scratch.dtype() == DType::F32 && scratch.numel() >= needed, "decode attention: scratch of ",
           scratch.numel(), " elements, ", needed, " needed for ", local_heads, " heads of width ", width,
           " in blocks of ", block_tokens, materialised ? " (materialised order)" : "");
  ScratchCursor cursor(scratch);
  return carve(cursor, local_heads, width, block_tokens, materialised);
}

// Per head of a range: the running maximum and sum of exp(score − maximum) and the output
// accumulated against that maximum; each block rescales what came before to its new maximum.
struct OnlineSoftmax {
  CallScratch buffers;
  int64_t head_dim, block_tokens;

  OnlineSoftmax(const CallScratch& scratch, int64_t heads, int64_t D, int64_t block)
      : buffers(scratch), head_dim(D), block_tokens(block) {
    std::fill(buffers.max, buffers.max + heads, -std::numeric_limits<float>::infinity());
    std::fill(buffers.sum, buffers.sum + heads, 0.0f);
    std::fill(buffers.acc, buffers.acc + heads * D, 0.0f);
  }
  float* scores_of(int64_t head) const { return buffers.scores + head * block_tokens; }
  float* acc_of(int64_t head) const { return buffers.acc + head * head_dim; }

  // Turns head `head`'s scores s[0, n) of a new block into probabilities against the new maximum.
  void absorb(int64_t head, float* s, int64_t n) const {
    float block_max = buffers.max[head];
    for (int64_t t = 0; t < n; ++t) block_max = std::max(block_max, s[t]);
    const float rescale = std::exp(buffers.max[head] - block_max);  // 0 for the first block
    float sum = buffers.sum[head] * rescale;  // in a register: s could alias the scratch
    float* out = acc_of(head);
    for (int64_t j = 0; j < head_dim; ++j) out[j] *= rescale;
    for (int64_t t = 0; t < n; ++t) {
      s[t] = std::exp(s[t] - block_max);
      sum += s[t];
    }
    buffers.sum[head] = sum;
    buffers.max[head] = block_max;
  }

  void write(float* y, HeadRange heads) const {
    for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
      const int64_t local = h - heads.first_head;
      const float inv_sum = 1.0f / buffers.sum[local];
      for (int64_t j = 0; j < head_dim; ++j) y[h * head_dim + j] = acc_of(local)[j] * inv_sum;
    }
  }
};

// Plain attention of the range's queries (local heads × D, one row after another) over one block of
// n tokens whose k and v rows are given by key(t, h) and value(t, h) (D numbers each).
template <class Key, class Value>
void attend_plain_block(const OnlineSoftmax& state, const float* queries, HeadRange heads, int64_t n, Key key,
                        Value value) {
  const int64_t D = state.head_dim;
  const float scale = 1.0f / std::sqrt(float(D));
  for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
    const int64_t local = h - heads.first_head;
    float* s = state.scores_of(local);
    for (int64_t t = 0; t < n; ++t) s[t] = dot(queries + local * D, key(t, h), D) * scale;
    state.absorb(local, s, n);
    float* out = state.acc_of(local);
    for (int64_t t = 0; t < n; ++t) axpy(out, s[t], value(t, h), D);
  }
}

}  // namespace

int64_t kv_cache_scratch_elements(int64_t heads, int64_t width, int64_t block_tokens) {
  return scratch_elements(heads, width, block_tokens, false);
}

int64_t factor_cache_scratch_elements(int64_t heads, int64_t head_dim, int64_t block_tokens, TpaDecodeOrder order) {
  return scratch_elements(heads, head_dim, block_tokens, order == TpaDecodeOrder::materialised);
}

void attend_kv_cache(float* y, const float* q, const Tensor& k, const Tensor& v, int64_t length, int64_t group_size,
                     HeadRange heads, int64_t block_tokens, const Tensor& scratch) {
  const int64_t kv_heads = k.size(1), D = k.size(2), local_heads = heads.end_head - heads.first_head;
  T6_ASSERT(length >= 1 && length <= k.size(0));
  const OnlineSoftmax state(call_scratch(scratch, heads, D, block_tokens, false), local_heads, D, block_tokens);
  const float* queries = q + heads.first_head * D;
  const float* keys = k.data<float>();
  const float* values = v.data<float>();
  for (int64_t begin = 0; begin < length; begin += block_tokens) {
    const int64_t n = std::min(block_tokens, length - begin);
    auto row = [&](const float* base) {
      return [=](int64_t t, int64_t h) { return base + ((begin + t) * kv_heads + h / group_size) * D; };
    };
    attend_plain_block(state, queries, heads, n, row(keys), row(values));
  }
  state.write(y, heads);
}

namespace {

// Scores of the range's heads for one block, straight from the factors: for T6,
// P[r, r'] = B̃_q[r] · B̃_k[t, r'] (shared by all heads), then s[h, t] = Σ_{r,r'} A_q[h, r] A_k[t, h, r'] P[r, r'];
// for KVonly s[h, t] = Σ_{r'} A_k[t, h, r'] (q̃_h · B̃_k[t, r']). Scaled by 1/(Rq·R·√D) (1/(R·√D)).
void factorised_scores(const OnlineSoftmax& state, const FactorQuery& query, const FactorCache& cache, int64_t begin,
                       int64_t n, HeadRange heads) {
  const int64_t H = cache.A_k.size(1), R = cache.A_k.size(2), D = cache.B_k.size(2), Rq = query.q_rank;
  const float* A_k = cache.A_k.data<float>();
  const float* B_k = cache.B_k.data<float>();
  const bool factorised_query = query.A_q != nullptr;
  const float scale = 1.0f / (float(factorised_query ? Rq * R : R) * std::sqrt(float(D)));
  float shared[64];  // P (Rq × R) of one token
  T6_ASSERT(Rq * R <= 64);
  for (int64_t t = 0; t < n; ++t) {
    const float* Bk = B_k + (begin + t) * R * D;
    const float* Ak = A_k + (begin + t) * H * R;
    if (factorised_query)
      for (int64_t r = 0; r < Rq; ++r)
        for (int64_t r2 = 0; r2 < R; ++r2) shared[r * R + r2] = dot(query.B_q + r * D, Bk + r2 * D, D);
    for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
      float score = 0;
      for (int64_t r2 = 0; r2 < R; ++r2) {
        float projected = 0;  // the query's component along B̃_k[t, r']
        if (factorised_query)
          for (int64_t r = 0; r < Rq; ++r) projected += query.A_q[h * Rq + r] * shared[r * R + r2];
        else
          projected = dot(query.q + h * D, Bk + r2 * D, D);
        score += Ak[h * R + r2] * projected;
      }
      state.scores_of(h - heads.first_head)[t] = score * scale;
    }
  }
}

void attend_factorised(const OnlineSoftmax& state, const FactorQuery& query, const FactorCache& cache, int64_t length,
                       HeadRange heads) {
  const int64_t block_tokens = state.block_tokens;
  const int64_t H = cache.A_k.size(1), R = cache.A_k.size(2), D = cache.B_k.size(2);
  const float* A_v = cache.A_v.data<float>();
  const float* B_v = cache.B_v.data<float>();
  const float inv_rank = 1.0f / float(R);
  for (int64_t begin = 0; begin < length; begin += block_tokens) {
    const int64_t n = std::min(block_tokens, length - begin);
    factorised_scores(state, query, cache, begin, n, heads);
    for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
      const int64_t local = h - heads.first_head;
      float* p = state.scores_of(local);
      state.absorb(local, p, n);
      // y_h += (1/R) Σ_t Σ_r' (p[h, t] · A_v[t, h, r']) · B_v[t, r']
      float* out = state.acc_of(local);
      for (int64_t t = 0; t < n; ++t) {
        const int64_t token = begin + t;
        for (int64_t r2 = 0; r2 < R; ++r2)
          axpy(out, p[t] * A_v[(token * H + h) * R + r2] * inv_rank, B_v + (token * R + r2) * D, D);
      }
    }
  }
}

// x_h = (1/R) Σ_r A[h, r] · B[r] for the range's heads, into out (local heads × D).
void contract_heads(float* out, const float* A, const float* B, int64_t R, int64_t D, HeadRange heads) {
  const float inv_rank = 1.0f / float(R);
  for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
    float* row = out + (h - heads.first_head) * D;
    std::fill(row, row + D, 0.0f);
    for (int64_t r = 0; r < R; ++r) axpy(row, A[h * R + r], B + r * D, D);
    for (int64_t j = 0; j < D; ++j) row[j] *= inv_rank;
  }
}

void attend_materialised(const OnlineSoftmax& state, const FactorQuery& query, const FactorCache& cache,
                         int64_t length, HeadRange heads) {
  const int64_t H = cache.A_k.size(1), R = cache.A_k.size(2), D = cache.B_k.size(2), block_tokens = state.block_tokens;
  const int64_t local_heads = heads.end_head - heads.first_head;
  const CallScratch& s = state.buffers;
  const float* queries = s.query;
  if (query.A_q) contract_heads(s.query, query.A_q, query.B_q, query.q_rank, D, heads);
  else queries = query.q + heads.first_head * D;
  for (int64_t begin = 0; begin < length; begin += block_tokens) {
    const int64_t n = std::min(block_tokens, length - begin);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t token = begin + t, at = t * local_heads * D;
      contract_heads(s.block_k + at, cache.A_k.data<float>() + token * H * R, cache.B_k.data<float>() + token * R * D,
                     R, D, heads);
      contract_heads(s.block_v + at, cache.A_v.data<float>() + token * H * R, cache.B_v.data<float>() + token * R * D,
                     R, D, heads);
    }
    auto row = [&](const float* block) {
      return [&, block](int64_t t, int64_t h) { return block + (t * local_heads + h - heads.first_head) * D; };
    };
    attend_plain_block(state, queries, heads, n, row(s.block_k), row(s.block_v));
  }
}

}  // namespace

void attend_factor_cache(float* y, const FactorQuery& query, const FactorCache& cache, int64_t length,
                         HeadRange heads, int64_t block_tokens, TpaDecodeOrder order, const Tensor& scratch) {
  T6_ASSERT(length >= 1 && length <= cache.A_k.size(0));
  const int64_t D = cache.B_k.size(2);
  const bool materialised = order == TpaDecodeOrder::materialised;
  const OnlineSoftmax state(call_scratch(scratch, heads, D, block_tokens, materialised),
                            heads.end_head - heads.first_head, D, block_tokens);
  if (materialised) attend_materialised(state, query, cache, length, heads);
  else attend_factorised(state, query, cache, length, heads);
  state.write(y, heads);
}

}  // namespace t6::infer
