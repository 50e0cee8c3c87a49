#include "model/mla_attention.h"

#include <algorithm>

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
      value_dim_(weights.config().v_head_dim),
      matmul_dtype_(weights.matmul_dtype()) {
  const std::string prefix = str("transformer.h.", layer, ".attn.");
  // The linear maps read the weights as the matmuls take them (the bf16 copy when training on the
  // CUDA backend); the latent norms' weights are fp32 statistics' companions, read as masters.
  auto bind = [&](const std::string& name, Tensor Weights::*member, bool matmul) {
    const std::string full = prefix + name + ".weight";
    weights_.*member = matmul ? weights.matmul_param(full) : weights.param(full);
    grads_.*member = weights.grad(full);  // empty without gradients (inference)
  };
  bind("q_a_proj", &Weights::q_a_proj, true);
  bind("q_a_layernorm", &Weights::q_a_layernorm, false);
  bind("q_b_proj", &Weights::q_b_proj, true);
  bind("kv_a_layernorm", &Weights::kv_a_layernorm, false);
  bind("kv_a_proj_with_mqa", &Weights::kv_a_latent, true);
  bind("kv_b_proj", &Weights::kv_b_proj, true);
  bind("c_proj", &Weights::c_proj, true);
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

// The norms read fp32 latents (the matmul gives them in fp32) and write the matmuls' type; q, k_pe,
// k, v and y are attention and matmul inputs, so of the matmuls' type too.
void MlaAttention::plan_activations(Arena& arena, int64_t B, int64_t T) {
  const Shapes s = shapes(B, T);
  const int64_t N = B * T;
  const DType md = matmul_dtype_;
  query_latent_ = {arena.take({N, q_rank_}), arena.take({N}), arena.take({N, q_rank_}, md)};
  kv_latent_ = {arena.take({N, kv_rank_}), arena.take({N}), arena.take({N, kv_rank_}, md)};
  q_ = arena.take(s.q, md);
  k_pe_ = arena.take(s.k_pe, md);
  k_ = arena.take(s.k, md);
  v_ = arena.take(s.v, md);
  y_ = arena.take(s.v, md);
  lse_ = arena.take({B, heads_, T});
}

// backward: dy, dq, dk, dv, dkv, dk_pe, each latent's gradient after and before its norm, then the
// matmul-typed copies of the gradients that enter matmuls (none on the CPU backend).
MlaAttention::Backward MlaAttention::carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t B,
                                                    int64_t T) const {
  const Shapes s = shapes(B, T);
  const int64_t N = B * T;
  Backward b;
  b.dout = matmul_operand_space(dout, matmul_dtype_, cursor);
  b.dy = cursor.take(s.v), b.dq = cursor.take(s.q), b.dk = cursor.take(s.k), b.dv = cursor.take(s.v);
  b.dkv = cursor.take(s.kv), b.dk_pe = cursor.take(s.k_pe);
  b.dq_normed = cursor.take({N, q_rank_}), b.dq_latent = cursor.take({N, q_rank_});
  b.dkv_normed = cursor.take({N, kv_rank_}), b.dkv_latent = cursor.take({N, kv_rank_});
  b.dq_operand = matmul_operand_space(b.dq, matmul_dtype_, cursor);
  b.dq_latent_operand = matmul_operand_space(b.dq_latent, matmul_dtype_, cursor);
  b.dkv_operand = matmul_operand_space(b.dkv, matmul_dtype_, cursor);
  b.dkv_latent_operand = matmul_operand_space(b.dkv_latent, matmul_dtype_, cursor);
  b.dk_pe_operand = matmul_operand_space(b.dk_pe, matmul_dtype_, cursor);
  b.attention_scratch = cursor.take({ops::attention_scratch_elements(T, true)});
  return b;
}

int64_t MlaAttention::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor cursor;
  // The incoming gradient is the fp32 residual stream's (B·T, d): only its shape and type are read.
  carve_backward(cursor, Tensor(nullptr, {B * T, weights_.c_proj.size(0)}, DType::F32), B, T);
  // The forward's kv (matmul-typed) and attention scratch.
  ScratchCursor forward;
  forward.take(shapes(B, T).kv, matmul_dtype_);
  forward.take({ops::attention_scratch_elements(T, false)});
  return std::max(cursor.used(), forward.used());
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
  expand_kv(kv_latent_.normed, k_pe_, cursor.take(shapes(context.batch, context.seq_len).kv, matmul_dtype_), k_, v_);
  // scale 1/sqrt(Dn + Dr), the width of q and k
  ops::attention_forward(y_, lse_, q_, k_, v_, cursor.take({ops::attention_scratch_elements(context.seq_len, false)}));
  linear_forward(out, y_, weights_.c_proj, context.rows());
}

void MlaAttention::backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) {
  const int64_t N = context.rows();
  ScratchCursor cursor(context.scratch);
  const Backward b = carve_backward(cursor, dout, context.batch, context.seq_len);
  fill_matmul_operand(b.dout, dout);
  linear_backward(b.dy, grads_.c_proj, b.dout, y_, weights_.c_proj, N, false);
  ops::attention_backward(b.dq, b.dk, b.dv, b.dy, q_, k_, v_, y_, lse_, b.attention_scratch);

  // Query path, in reverse: RoPE's transpose on q_pe, q_b_proj, the weighted norm, q_a_proj.
  ops::rope_backward(b.dq, context.rope_cos, context.rope_sin, nope_dim_);
  fill_matmul_operand(b.dq_operand, b.dq);
  linear_backward(b.dq_normed, grads_.q_b_proj, b.dq_operand, query_latent_.normed, weights_.q_b_proj, N, false);
  ops::fill_zero(b.dq_latent);
  ops::weighted_rmsnorm_backward(b.dq_latent, grads_.q_a_layernorm, b.dq_normed, query_latent_.raw,
                                 query_latent_.rstd, weights_.q_a_layernorm);
  fill_matmul_operand(b.dq_latent_operand, b.dq_latent);
  linear_backward(dx, grads_.q_a_proj, b.dq_latent_operand, x, weights_.q_a_proj, N, false);

  // Key/value path: k_pe's gradient sums over every head that read it.
  ops::mla_split_kv_backward(b.dkv, b.dk_pe, b.dk, b.dv);
  ops::rope_backward(b.dk_pe, context.rope_cos, context.rope_sin);
  fill_matmul_operand(b.dkv_operand, b.dkv);
  linear_backward(b.dkv_normed, grads_.kv_b_proj, b.dkv_operand, kv_latent_.normed, weights_.kv_b_proj, N, false);
  ops::fill_zero(b.dkv_latent);
  ops::weighted_rmsnorm_backward(b.dkv_latent, grads_.kv_a_layernorm, b.dkv_normed, kv_latent_.raw, kv_latent_.rstd,
                                 weights_.kv_a_layernorm);
  fill_matmul_operand(b.dkv_latent_operand, b.dkv_latent);
  fill_matmul_operand(b.dk_pe_operand, b.dk_pe);
  linear_backward(dx, grads_.kv_a_latent, b.dkv_latent_operand, x, weights_.kv_a_latent, N, true);
  linear_backward(dx, grads_.kv_a_rope, b.dk_pe_operand, x, weights_.kv_a_rope, N, true);
}

}  // namespace t6
