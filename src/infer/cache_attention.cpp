#include "infer/cache_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

// Per head of a range: the running maximum and sum of exp(score − maximum) and the output
// accumulated against that maximum; each block rescales what came before to its new maximum.
// The buffers are per thread and keep their capacity, so a decode step allocates nothing.
struct OnlineSoftmax {
  std::vector<float> max, sum, acc, scores, block_k, block_v, query;
  int64_t head_dim = 0;

  void reset(int64_t heads, int64_t D, int64_t block_tokens) {
    head_dim = D;
    max.assign(size_t(heads), -std::numeric_limits<float>::infinity());
    sum.assign(size_t(heads), 0.0f);
    acc.assign(size_t(heads * D), 0.0f);
    scores.resize(size_t(heads * block_tokens));
  }
  float* scores_of(int64_t head, int64_t block_tokens) { return scores.data() + head * block_tokens; }
  float* acc_of(int64_t head) { return acc.data() + head * head_dim; }

  // Turns head `head`'s scores s[0, n) of a new block into probabilities against the new maximum.
  void absorb(int64_t head, float* s, int64_t n) {
    float block_max = max[size_t(head)];
    for (int64_t t = 0; t < n; ++t) block_max = std::max(block_max, s[t]);
    const float rescale = std::exp(max[size_t(head)] - block_max);  // 0 for the first block
    sum[size_t(head)] *= rescale;
    float* out = acc_of(head);
    for (int64_t j = 0; j < head_dim; ++j) out[j] *= rescale;
    for (int64_t t = 0; t < n; ++t) {
      s[t] = std::exp(s[t] - block_max);
      sum[size_t(head)] += s[t];
    }
    max[size_t(head)] = block_max;
  }

  void write(float* y, HeadRange heads) const {
    for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
      const int64_t local = h - heads.first_head;
      const float inv_sum = 1.0f / sum[size_t(local)];
      for (int64_t j = 0; j < head_dim; ++j) y[h * head_dim + j] = acc[size_t(local * head_dim + j)] * inv_sum;
    }
  }
};

thread_local OnlineSoftmax t_state;

// Plain attention of the range's queries over one block of n tokens whose k and v rows are given
// by key(t, h) and value(t, h) (D numbers each).
template <class Key, class Value>
void attend_plain_block(OnlineSoftmax& state, const float* const* queries, HeadRange heads, int64_t n,
                        int64_t block_tokens, Key key, Value value) {
  const int64_t D = state.head_dim;
  const float scale = 1.0f / std::sqrt(float(D));
  for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
    const int64_t local = h - heads.first_head;
    float* s = state.scores_of(local, block_tokens);
    for (int64_t t = 0; t < n; ++t) s[t] = dot(queries[local], key(t, h), D) * scale;
    state.absorb(local, s, n);
    float* out = state.acc_of(local);
    for (int64_t t = 0; t < n; ++t) axpy(out, s[t], value(t, h), D);
  }
}

}  // namespace

void attend_kv_cache(float* y, const float* q, const Tensor& k, const Tensor& v, int64_t length, int64_t group_size,
                     HeadRange heads, int64_t block_tokens) {
  const int64_t kv_heads = k.size(1), D = k.size(2), local_heads = heads.end_head - heads.first_head;
  T6_ASSERT(length >= 1 && length <= k.size(0));
  OnlineSoftmax& state = t_state;
  state.reset(local_heads, D, block_tokens);
  std::vector<const float*> queries(static_cast<size_t>(local_heads), nullptr);
  for (int64_t h = heads.first_head; h < heads.end_head; ++h) queries[size_t(h - heads.first_head)] = q + h * D;
  const float* keys = k.data<float>();
  const float* values = v.data<float>();
  for (int64_t begin = 0; begin < length; begin += block_tokens) {
    const int64_t n = std::min(block_tokens, length - begin);
    auto row = [&](const float* base) {
      return [=](int64_t t, int64_t h) { return base + ((begin + t) * kv_heads + h / group_size) * D; };
    };
    attend_plain_block(state, queries.data(), heads, n, block_tokens, row(keys), row(values));
  }
  state.write(y, heads);
}

namespace {

// Scores of the range's heads for one block, straight from the factors: for T6,
// P[r, r'] = B̃_q[r] · B̃_k[t, r'] (shared by all heads), then s[h, t] = Σ_{r,r'} A_q[h, r] A_k[t, h, r'] P[r, r'];
// for KVonly s[h, t] = Σ_{r'} A_k[t, h, r'] (q̃_h · B̃_k[t, r']). Scaled by 1/(Rq·R·√D) (1/(R·√D)).
void factorised_scores(OnlineSoftmax& state, const FactorQuery& query, const FactorCache& cache, int64_t begin,
                       int64_t n, HeadRange heads, int64_t block_tokens) {
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
      state.scores_of(h - heads.first_head, block_tokens)[t] = score * scale;
    }
  }
}

void attend_factorised(OnlineSoftmax& state, const FactorQuery& query, const FactorCache& cache, int64_t length,
                       HeadRange heads, int64_t block_tokens) {
  const int64_t H = cache.A_k.size(1), R = cache.A_k.size(2), D = cache.B_k.size(2);
  const float* A_v = cache.A_v.data<float>();
  const float* B_v = cache.B_v.data<float>();
  const float inv_rank = 1.0f / float(R);
  for (int64_t begin = 0; begin < length; begin += block_tokens) {
    const int64_t n = std::min(block_tokens, length - begin);
    factorised_scores(state, query, cache, begin, n, heads, block_tokens);
    for (int64_t h = heads.first_head; h < heads.end_head; ++h) {
      const int64_t local = h - heads.first_head;
      float* p = state.scores_of(local, block_tokens);
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

void attend_materialised(OnlineSoftmax& state, const FactorQuery& query, const FactorCache& cache, int64_t length,
                         HeadRange heads, int64_t block_tokens) {
  const int64_t H = cache.A_k.size(1), R = cache.A_k.size(2), D = cache.B_k.size(2);
  const int64_t local_heads = heads.end_head - heads.first_head;
  std::vector<const float*> queries(static_cast<size_t>(local_heads), nullptr);
  if (query.A_q) {
    state.query.resize(size_t(local_heads * D));
    contract_heads(state.query.data(), query.A_q, query.B_q, query.q_rank, D, heads);
    for (int64_t h = 0; h < local_heads; ++h) queries[size_t(h)] = state.query.data() + h * D;
  } else {
    for (int64_t h = 0; h < local_heads; ++h) queries[size_t(h)] = query.q + (heads.first_head + h) * D;
  }
  state.block_k.resize(size_t(block_tokens * local_heads * D));
  state.block_v.resize(size_t(block_tokens * local_heads * D));
  for (int64_t begin = 0; begin < length; begin += block_tokens) {
    const int64_t n = std::min(block_tokens, length - begin);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t token = begin + t;
      const size_t at = size_t(t * local_heads * D);
      contract_heads(state.block_k.data() + at, cache.A_k.data<float>() + token * H * R,
                     cache.B_k.data<float>() + token * R * D, R, D, heads);
      contract_heads(state.block_v.data() + at, cache.A_v.data<float>() + token * H * R,
                     cache.B_v.data<float>() + token * R * D, R, D, heads);
    }
    auto row = [&](const std::vector<float>& block) {
      return [&, base = block.data()](int64_t t, int64_t h) {
        return base + (t * local_heads + h - heads.first_head) * D;
      };
    };
    attend_plain_block(state, queries.data(), heads, n, block_tokens, row(state.block_k), row(state.block_v));
  }
}

}  // namespace

void attend_factor_cache(float* y, const FactorQuery& query, const FactorCache& cache, int64_t length,
                         HeadRange heads, int64_t block_tokens, TpaDecodeOrder order) {
  T6_ASSERT(length >= 1 && length <= cache.A_k.size(0));
  OnlineSoftmax& state = t_state;
  state.reset(heads.end_head - heads.first_head, cache.B_k.size(2), block_tokens);
  if (order == TpaDecodeOrder::factorised) attend_factorised(state, query, cache, length, heads, block_tokens);
  else attend_materialised(state, query, cache, length, heads, block_tokens);
  state.write(y, heads);
}

}  // namespace t6::infer
