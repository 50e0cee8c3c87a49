#include "model/mla_attention.h"

#include "model/linear.h"

namespace t6 {

namespace {
int64_t rows_of(const Tensor& x, const Tensor& weight) { return x.numel() / weight.size(1); }
}  // namespace

MlaAttention::MlaAttention(const ModelWeights& weights, int64_t layer)
    : heads_(weights.table().heads().local_heads),
      nope_dim_(weights.config().head_dim),
      rope_dim_(weights.config().qk_rope_head_dim),
      q_rank_(weights.config().q_lora_rank),
      kv_rank_(weights.config().kv_lora_rank),
      value_dim_(weights.config().v_head_dim) {
  const std::string prefix = str("transformer.h.", layer, ".attn.");
  auto bind = [&](const std::string& name, Tensor Weights::*member) {
    weights_.*member = weights.param(prefix + name + ".weight");
    grads_.*member = weights.grad(prefix + name + ".weight");  // empty without gradients (inference)
  };
  bind("q_a_proj", &Weights::q_a_proj);
  bind("q_a_layernorm", &Weights::q_a_layernorm);
  bind("q_b_proj", &Weights::q_b_proj);
  bind("kv_a_layernorm", &Weights::kv_a_layernorm);
  bind("kv_a_proj_with_mqa", &Weights::kv_a_latent);
  bind("kv_b_proj", &Weights::kv_b_proj);
  bind("c_proj", &Weights::c_proj);
  // Two linear maps from one weight: its first Ckv rows give the latent, the last Dr rows k_pe.
  for (Weights* set : {&weights_, &grads_}) {
    if (set->kv_a_latent.empty()) continue;
    set->kv_a_rope = set->kv_a_latent.rows(kv_rank_, kv_rank_ + rope_dim_);
    set->kv_a_latent = set->kv_a_latent.rows(0, kv_rank_);
  }
}

MlaAttention::Shapes MlaAttention::shapes(int64_t B, int64_t T) const {
  const int64_t H = heads_;
  return {{B, T, H, nope_dim_ + rope_dim_}, {B, T, H, nope_dim_ + rope_dim_}, {B, T, H, value_dim_},
          {B, T, H, nope_dim_ + value_dim_}, {B, T, 1, rope_dim_}};
}

void MlaAttention::plan_activations(Arena& arena, int64_t B, int64_t T) {
  const Shapes s = shapes(B, T);
  const int64_t N = B * T;
  query_latent_ = {arena.take({N, q_rank_}), arena.take({N}), arena.take({N, q_rank_})};
  kv_latent_ = {arena.take({N, kv_rank_}), arena.take({N}), arena.take({N, kv_rank_})};
  q_ = arena.take(s.q);
  k_pe_ = arena.take(s.k_pe);
  k_ = arena.take(s.k);
  v_ = arena.take(s.v);
  y_ = arena.take(s.v);
  lse_ = arena.take({B, heads_, T});
}

int64_t MlaAttention::scratch_elements(int64_t B, int64_t T) const {
  const Shapes s = shapes(B, T);
  const int64_t N = B * T;
  ScratchCursor cursor;
  // backward: dy, dq, dk, dv, dkv, dk_pe, then each latent's gradient after and before its norm.
  for (const Shape& shape : {s.v, s.q, s.k, s.v, s.kv, s.k_pe}) cursor.take(shape);
  for (int64_t width : {q_rank_, q_rank_, kv_rank_, kv_rank_}) cursor.take({N, width});
  cursor.take({ops::attention_scratch_elements(T, true)});
  return cursor.used();  // the forward's kv and attention scratch fit in the same space
}

void MlaAttention::project_query(const Tensor& x, const Tensor& cos, const Tensor& sin, const Latent& latent,
                                 const Tensor& q) const {
  const int64_t N = rows_of(x, weights_.q_a_proj);
  linear_forward(latent.raw, x, weights_.q_a_proj, N);
  ops::weighted_rmsnorm_forward(latent.normed, latent.rstd, latent.raw, weights_.q_a_layernorm);
  linear_forward(q, latent.normed, weights_.q_b_proj, N);
  ops::rope_forward(q, cos, sin, nope_dim_);  // each head is [q_nope (Dn), q_pe (Dr)]
}

void MlaAttention::project_kv_latent(const Tensor& x, const Tensor& cos, const Tensor& sin, const Latent& latent,
                                     const Tensor& k_pe) const {
  const int64_t N = rows_of(x, weights_.kv_a_latent);
  linear_forward(latent.raw, x, weights_.kv_a_latent, N);
  ops::weighted_rmsnorm_forward(latent.normed, latent.rstd, latent.raw, weights_.kv_a_layernorm);
  linear_forward(k_pe, x, weights_.kv_a_rope, N);
  ops::rope_forward(k_pe, cos, sin);
}

void MlaAttention::expand_kv(const Tensor& normed_latent, const Tensor& k_pe, const Tensor& kv, const Tensor& k,
                             const Tensor& v) const {
  linear_forward(kv, normed_latent, weights_.kv_b_proj, rows_of(normed_latent, weights_.kv_b_proj));
  ops::mla_split_kv_forward(k, v, kv, k_pe);
}

void MlaAttention::forward(const LayerContext& context, const Tensor& x, const Tensor& out) {
  project_query(x, context.rope_cos, context.rope_sin, query_latent_, q_);
  project_kv_latent(x, context.rope_cos, context.rope_sin, kv_latent_, k_pe_);
  ScratchCursor cursor(context.scratch);
  expand_kv(kv_latent_.normed, k_pe_, cursor.take(shapes(context.batch, context.seq_len).kv), k_, v_);
  // scale 1/sqrt(Dn + Dr), the width of q and k
  ops::attention_forward(y_, lse_, q_, k_, v_, cursor.take({ops::attention_scratch_elements(context.seq_len, false)}));
  linear_forward(out, y_, weights_.c_proj, context.rows());
}

void MlaAttention::backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) {
  const int64_t N = context.rows();
  const Shapes s = shapes(context.batch, context.seq_len);
  ScratchCursor cursor(context.scratch);
  Tensor dy = cursor.take(s.v), dq = cursor.take(s.q), dk = cursor.take(s.k), dv = cursor.take(s.v);
  Tensor dkv = cursor.take(s.kv), dk_pe = cursor.take(s.k_pe);
  Tensor dq_normed = cursor.take({N, q_rank_}), dq_latent = cursor.take({N, q_rank_});
  Tensor dkv_normed = cursor.take({N, kv_rank_}), dkv_latent = cursor.take({N, kv_rank_});
  const Tensor attention_scratch = cursor.take({ops::attention_scratch_elements(context.seq_len, true)});
  linear_backward(dy, grads_.c_proj, dout, y_, weights_.c_proj, N, false);
  ops::attention_backward(dq, dk, dv, dy, q_, k_, v_, y_, lse_, attention_scratch);

  // Query path, in reverse: RoPE's transpose on q_pe, q_b_proj, the weighted norm, q_a_proj.
  ops::rope_backward(dq, context.rope_cos, context.rope_sin, nope_dim_);
  linear_backward(dq_normed, grads_.q_b_proj, dq, query_latent_.normed, weights_.q_b_proj, N, false);
  ops::fill_zero(dq_latent);
  ops::weighted_rmsnorm_backward(dq_latent, grads_.q_a_layernorm, dq_normed, query_latent_.raw, query_latent_.rstd,
                                 weights_.q_a_layernorm);
  linear_backward(dx, grads_.q_a_proj, dq_latent, x, weights_.q_a_proj, N, false);

  // Key/value path: k_pe's gradient sums over every head that read it.
  ops::mla_split_kv_backward(dkv, dk_pe, dk, dv);
  ops::rope_backward(dk_pe, context.rope_cos, context.rope_sin);
  linear_backward(dkv_normed, grads_.kv_b_proj, dkv, kv_latent_.normed, weights_.kv_b_proj, N, false);
  ops::fill_zero(dkv_latent);
  ops::weighted_rmsnorm_backward(dkv_latent, grads_.kv_a_layernorm, dkv_normed, kv_latent_.raw, kv_latent_.rstd,
                                 weights_.kv_a_layernorm);
  linear_backward(dx, grads_.kv_a_latent, dkv_latent, x, weights_.kv_a_latent, N, true);
  linear_backward(dx, grads_.kv_a_rope, dk_pe, x, weights_.kv_a_rope, N, true);
}

}  // namespace t6
