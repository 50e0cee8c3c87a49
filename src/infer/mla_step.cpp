#include "infer/mla_step.h"

#include <cmath>

#include "core/arena.h"
#include "infer/step_helpers.h"
#include "model/linear.h"
#include "model/mla_attention.h"

namespace t6::infer {

namespace {

float dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

class MlaStep : public AttentionStep {
 public:
  MlaStep(const ModelWeights& weights, int64_t layer)
      : layer_(weights, layer),
        heads_(weights.config().n_head),
        nope_dim_(weights.config().head_dim),
        rope_dim_(weights.config().qk_rope_head_dim),
        q_rank_(weights.config().q_lora_rank),
        kv_rank_(weights.config().kv_lora_rank),
        value_dim_(weights.config().v_head_dim),
        kv_b_proj_(weights.param(attn_weight(layer, "kv_b_proj"))),
        c_proj_(weights.param(attn_weight(layer, "c_proj"))) {}

  int64_t scratch_elements(int64_t N) const override {
    ScratchCursor cursor;
    buffers(cursor, N);
    return cursor.used();
  }
  // The latent row is both the key and the value (v is k): the op widens a BF16 block once.
  int64_t attention_thread_elements(int64_t block_tokens, TpaDecodeOrder, DType cache_dtype) const override {
    const int64_t key = kv_rank_ + rope_dim_;
    return ops::kv_decode_thread_elements(heads_, 1, key, key, block_tokens, cache_dtype);
  }
  int64_t attention_partial_elements() const override {
    return ops::decode_partial_elements(heads_, kv_rank_ + rope_dim_);
  }

  void forward(const StepContext& context, const Tensor& x, const Tensor& out) const override {
    const int64_t N = context.rows.size(), H = heads_, key = kv_rank_ + rope_dim_;
    ScratchCursor cursor(context.scratch);
    const Buffers b = buffers(cursor, N);
    // The rows are one sequence to the projections, whose RoPE table rows are the rows' positions.
    layer_.project_query(x, context.rope_cos, context.rope_sin, b.query_latent, b.q);
    layer_.project_kv_latent(x, context.rope_cos, context.rope_sin, b.kv_latent, b.k_pe);

    for (int64_t i = 0; i < N; ++i) {
      float* row = b.entry.data<float>() + i * key;
      std::copy_n(b.kv_latent.normed.data<float>() + i * kv_rank_, kv_rank_, row);
      std::copy_n(b.k_pe.data<float>() + i * rope_dim_, rope_dim_, row + kv_rank_);
    }
    write_cache_field(context, 0, b.entry);

    absorb_queries(b.q, b.absorbed, N);
    const Tensor latents = context.cache.layer_field(context.layer, 0);
    ops::kv_decode_attention(b.attended.view({N, H, key}), b.absorbed.view({N, H, key}), latents, latents,
                             decode_rows(context), context.attention_workspace);
    expand_values(b.attended, b.y, N);
    linear_forward(out, b.y, c_proj_, N);
  }

 private:
  struct Buffers {
    MlaAttention::Latent query_latent, kv_latent;
    Tensor q, k_pe;                 // (1, N, H, Dn + Dr) and (1, N, 1, Dr), RoPE applied
    Tensor entry;                   // (N, Ckv + Dr): each row's cache entry
    Tensor absorbed, attended, y;   // (N, H·(Ckv + Dr)) twice, (N, H·Dv)
  };
  Buffers buffers(ScratchCursor& cursor, int64_t N) const {
    const int64_t H = heads_, key = kv_rank_ + rope_dim_;
    Buffers b;
    b.query_latent = {cursor.take({N, q_rank_}), cursor.take({N}), cursor.take({N, q_rank_})};
    b.kv_latent = {cursor.take({N, kv_rank_}), cursor.take({N}), cursor.take({N, kv_rank_})};
    b.q = cursor.take({1, N, H, nope_dim_ + rope_dim_});
    b.k_pe = cursor.take({1, N, 1, rope_dim_});
    b.entry = cursor.take({N, key});
    b.absorbed = cursor.take({N, H * key});
    b.attended = cursor.take({N, H * key});
    b.y = cursor.take({N, H * value_dim_});
    return b;
  }

  // Head h's rows j of kv_b_proj: W_k[h] for j < Dn, W_v[h] after.
  const float* kv_b_row(int64_t h, int64_t j) const {
    return kv_b_proj_.data<float>() + (h * (nope_dim_ + value_dim_) + j) * kv_rank_;
  }

  // absorbed (N, H, Ckv + Dr) = [W_k[h]ᵀ q_nope_h, q_pe_h], times sqrt(Ckv + Dr)/sqrt(Dn + Dr):
  // the decode attention scales by 1/sqrt of the key width, MLA by 1/sqrt(Dn + Dr).
  void absorb_queries(const Tensor& q, const Tensor& absorbed, int64_t N) const {
    const int64_t H = heads_, Dq = nope_dim_ + rope_dim_, key = kv_rank_ + rope_dim_;
    const float rescale = std::sqrt(float(key)) / std::sqrt(float(Dq));
#pragma omp parallel for collapse(2) schedule(static) if (N * H >= 64)
    for (int64_t i = 0; i < N; ++i) {
      for (int64_t h = 0; h < H; ++h) {
        const float* q_head = q.data<float>() + (i * H + h) * Dq;
        float* out = absorbed.data<float>() + (i * H + h) * key;
        std::fill(out, out + kv_rank_, 0.0f);
        for (int64_t j = 0; j < nope_dim_; ++j) {
          const float* w = kv_b_row(h, j);
          for (int64_t c = 0; c < kv_rank_; ++c) out[c] += q_head[j] * w[c];
        }
        for (int64_t c = 0; c < kv_rank_; ++c) out[c] *= rescale;
        for (int64_t r = 0; r < rope_dim_; ++r) out[kv_rank_ + r] = q_head[nope_dim_ + r] * rescale;
      }
    }
  }

  // y (N, H·Dv): y_h = W_v[h] · (the first Ckv numbers of head h's attended row); the last Dr,
  // the attended k_pe, are not a value and are dropped.
  void expand_values(const Tensor& attended, const Tensor& y, int64_t N) const {
    const int64_t H = heads_, key = kv_rank_ + rope_dim_;
#pragma omp parallel for collapse(2) schedule(static) if (N * H >= 64)
    for (int64_t i = 0; i < N; ++i) {
      for (int64_t h = 0; h < H; ++h) {
        const float* latent = attended.data<float>() + (i * H + h) * key;
        float* out = y.data<float>() + (i * H + h) * value_dim_;
        for (int64_t j = 0; j < value_dim_; ++j) out[j] = dot(kv_b_row(h, nope_dim_ + j), latent, kv_rank_);
      }
    }
  }

  MlaAttention layer_;  // its projections, on the model's weights
  int64_t heads_, nope_dim_, rope_dim_, q_rank_, kv_rank_, value_dim_;
  Tensor kv_b_proj_, c_proj_;
};

}  // namespace

std::unique_ptr<AttentionStep> make_mla_step(const ModelWeights& weights, int64_t layer) {
  return std::make_unique<MlaStep>(weights, layer);
}

}  // namespace t6::infer
