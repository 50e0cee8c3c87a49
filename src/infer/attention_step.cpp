#include "infer/attention_step.h"

#include <array>

#include "core/arena.h"
#include "infer/mla_step.h"
#include "infer/step_helpers.h"
#include "kernels/ops.h"
#include "model/linear.h"

namespace t6::infer {

namespace {

// RoPE of each row of x (N, R·D) at its own position: the rows are one sequence to the op, whose
// table rows are the rows' positions.
void rope_rows(const StepContext& context, const Tensor& x, int64_t R) {
  const int64_t N = context.rows.size(), D = x.size(1) / R;
  ops::rope_forward(x.view({1, N, R, D}), context.rope_cos, context.rope_sin);
}

// T6 and TPA-KVonly over the factor cache.
class TpaStep : public AttentionStep {
 public:
  TpaStep(const ModelWeights& weights, int64_t layer)
      : factorised_query_(weights.config().factorised_query()),
        heads_(weights.config().n_head),
        head_dim_(weights.config().head_dim),
        q_rank_(weights.config().q_rank),
        rank_(weights.config().rank) {
    if (factorised_query_) {
      W_A_q_ = weights.param(attn_weight(layer, "c_qkv.W_A_q"));
      W_B_q_ = weights.param(attn_weight(layer, "c_qkv.W_B_q"));
    } else {
      c_q_ = weights.param(attn_weight(layer, "c_qkv.c_q"));
    }
    W_A_k_ = weights.param(attn_weight(layer, "c_qkv.W_A_k"));
    W_B_k_ = weights.param(attn_weight(layer, "c_qkv.W_B_k"));
    W_A_v_ = weights.param(attn_weight(layer, "c_qkv.W_A_v"));
    W_B_v_ = weights.param(attn_weight(layer, "c_qkv.W_B_v"));
    c_proj_ = weights.param(attn_weight(layer, "c_proj"));
  }

  int64_t scratch_elements(int64_t N) const override {
    const int64_t H = heads_, D = head_dim_, R = rank_;
    const int64_t query = factorised_query_ ? N * q_rank_ * (H + D) : N * H * D;
    return query + 2 * N * R * (H + D) + N * H * D;
  }
  int64_t attention_scratch_elements(int64_t block_tokens, TpaDecodeOrder order) const override {
    return factor_cache_scratch_elements(heads_, head_dim_, block_tokens, order);
  }

  void forward(const StepContext& context, const Tensor& x, const Tensor& out) const override {
    const int64_t N = context.rows.size(), H = heads_, D = head_dim_, R = rank_, Rq = q_rank_;
    ScratchCursor cursor(context.scratch);
    Tensor A_q, B_q, q;
    if (factorised_query_) {
      A_q = cursor.take({N, H * Rq}), B_q = cursor.take({N, Rq * D});
      linear_forward(A_q, x, W_A_q_, N);
      linear_forward(B_q, x, W_B_q_, N);
      rope_rows(context, B_q, Rq);
    } else {
      q = cursor.take({N, H * D});
      linear_forward(q, x, c_q_, N);
      rope_rows(context, q, H);
    }
    const std::array<Tensor, 4> factors = {cursor.take({N, H * R}), cursor.take({N, R * D}), cursor.take({N, H * R}),
                                           cursor.take({N, R * D})};
    linear_forward(factors[0], x, W_A_k_, N);
    linear_forward(factors[1], x, W_B_k_, N);
    linear_forward(factors[2], x, W_A_v_, N);
    linear_forward(factors[3], x, W_B_v_, N);
    rope_rows(context, factors[1], R);
    write_cache_rows(context, factors);

    const Tensor y = cursor.take({N, H * D});
    for_rows_and_heads(context, H, [&](int64_t row, HeadRange heads, const Tensor& scratch) {
      const int64_t slot = context.rows.slot[size_t(row)];
      FactorQuery query;
      if (factorised_query_) {
        query.A_q = A_q.data<float>() + row * H * Rq;
        query.B_q = B_q.data<float>() + row * Rq * D;
        query.q_rank = Rq;
      } else {
        query.q = q.data<float>() + row * H * D;
      }
      const FactorCache cache{context.cache.field(context.layer, 0, slot), context.cache.field(context.layer, 1, slot),
                              context.cache.field(context.layer, 2, slot), context.cache.field(context.layer, 3, slot)};
      attend_factor_cache(y.data<float>() + row * H * D, query, cache, context.rows.position[size_t(row)] + 1, heads,
                          context.block_tokens, context.order, scratch);
    });
    linear_forward(out, y, c_proj_, N);
  }

 private:
  bool factorised_query_;
  int64_t heads_, head_dim_, q_rank_, rank_;
  Tensor W_A_q_, W_B_q_, c_q_, W_A_k_, W_B_k_, W_A_v_, W_B_v_, c_proj_;
};

// MHA and GQA over cached k̃ and v.
class GqaStep : public AttentionStep {
 public:
  GqaStep(const ModelWeights& weights, int64_t layer)
      : heads_(weights.config().n_head),
        kv_heads_(weights.config().kv_heads()),
        head_dim_(weights.config().head_dim),
        c_q_(weights.param(attn_weight(layer, "c_q"))),
        c_k_(weights.param(attn_weight(layer, "c_k"))),
        c_v_(weights.param(attn_weight(layer, "c_v"))),
        c_proj_(weights.param(attn_weight(layer, "c_proj"))) {}

  int64_t scratch_elements(int64_t N) const override { return N * head_dim_ * (2 * heads_ + 2 * kv_heads_); }
  int64_t attention_scratch_elements(int64_t block_tokens, TpaDecodeOrder) const override {
    return kv_cache_scratch_elements(heads_, head_dim_, block_tokens);
  }

  void forward(const StepContext& context, const Tensor& x, const Tensor& out) const override {
    const int64_t N = context.rows.size(), H = heads_, D = head_dim_;
    ScratchCursor cursor(context.scratch);
    const Tensor q = cursor.take({N, H * D});
    const std::array<Tensor, 2> kv = {cursor.take({N, kv_heads_ * D}), cursor.take({N, kv_heads_ * D})};
    linear_forward(q, x, c_q_, N);
    linear_forward(kv[0], x, c_k_, N);
    linear_forward(kv[1], x, c_v_, N);
    rope_rows(context, q, H);
    rope_rows(context, kv[0], kv_heads_);
    write_cache_rows(context, kv);

    const Tensor y = cursor.take({N, H * D});
    for_rows_and_heads(context, H, [&](int64_t row, HeadRange heads, const Tensor& scratch) {
      const int64_t slot = context.rows.slot[size_t(row)];
      attend_kv_cache(y.data<float>() + row * H * D, q.data<float>() + row * H * D,
                      context.cache.field(context.layer, 0, slot), context.cache.field(context.layer, 1, slot),
                      context.rows.position[size_t(row)] + 1, H / kv_heads_, heads, context.block_tokens, scratch);
    });
    linear_forward(out, y, c_proj_, N);
  }

 private:
  int64_t heads_, kv_heads_, head_dim_;
  Tensor c_q_, c_k_, c_v_, c_proj_;
};

}  // namespace

std::unique_ptr<AttentionStep> make_attention_step(const ModelWeights& weights, int64_t layer) {
  if (weights.config().factorised_kv()) return std::make_unique<TpaStep>(weights, layer);
  if (weights.config().latent_attention()) return make_mla_step(weights, layer);
  return std::make_unique<GqaStep>(weights, layer);
}

}  // namespace t6::infer
