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

  int64_t scratch_elements(int64_t N) const override {  // the takes of forward, in its order
    const int64_t H = heads_, D = head_dim_, R = rank_, Rq = q_rank_;
    ScratchCursor cursor;
    if (factorised_query_) cursor.take({N, H * Rq}), cursor.take({N, Rq * D});
    else cursor.take({N, H * D});
    for (const int64_t width : {H * R, R * D, H * R, R * D, H * D}) cursor.take({N, width});
    return cursor.used();
  }
  int64_t attention_thread_elements(int64_t block_tokens, TpaDecodeOrder order, DType cache_dtype) const override {
    return ops::tpa_decode_thread_elements(heads_, head_dim_, rank_, factorised_query_ ? q_rank_ : 0, block_tokens,
                                           order, cache_dtype);
  }
  int64_t attention_partial_elements() const override { return ops::decode_partial_elements(heads_, head_dim_); }

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
    // The cache keeps A_k and A_v rank by head (kv_cache.h): the write transposes them.
    for (size_t field = 0; field < factors.size(); ++field) write_cache_field(context, field, factors[field], field % 2 == 0);

    const Tensor y = cursor.take({N, H * D});
    ops::TpaDecodeQuery query;
    if (factorised_query_) query.A_q = A_q.view({N, H, Rq}), query.B_q = B_q.view({N, Rq, D});
    else query.q = q.view({N, H, D});
    const KvCache& cache = context.cache;
    const ops::TpaFactorCache factor_cache{cache.layer_field(context.layer, 0), cache.layer_field(context.layer, 1),
                                      cache.layer_field(context.layer, 2), cache.layer_field(context.layer, 3)};
    ops::tpa_decode_attention(y, query, factor_cache, decode_rows(context), context.order, context.attention_workspace);
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
  int64_t attention_thread_elements(int64_t block_tokens, TpaDecodeOrder, DType cache_dtype) const override {
    return ops::kv_decode_thread_elements(heads_, kv_heads_, head_dim_, head_dim_, block_tokens, cache_dtype);
  }
  int64_t attention_partial_elements() const override { return ops::decode_partial_elements(heads_, head_dim_); }

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
    write_cache_field(context, 0, kv[0]);
    write_cache_field(context, 1, kv[1]);

    const Tensor y = cursor.take({N, H * D});
    ops::kv_decode_attention(y, q.view({N, H, D}), context.cache.layer_field(context.layer, 0),
                             context.cache.layer_field(context.layer, 1), decode_rows(context),
                             context.attention_workspace);
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
