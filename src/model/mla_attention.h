// Multi-head latent attention, the DeepSeek-V2 baseline (llama_mla, docs/MODEL.md 3.1): the query
// comes from a normed latent of width Cq, keys and values from a normed latent of width Ckv
// expanded per head; RoPE (over Dr, its own tables) rotates the last Dr columns of every query head
// and one key part shared by all heads; scale 1/sqrt(Dn + Dr); value heads of width Dv.
//
// Under TP each rank holds its heads' rows of q_b_proj and kv_b_proj and computes the (replicated)
// latents in full; their weights' gradients are then partial sums over heads, reduced over TP by the
// trainer (the parameter table marks them).
//
// The forward's pieces are public so that a decoder with a latent cache (docs/MODEL.md 3.1) can call
// them on its own buffers: project_kv_latent gives a new token's cache entry (normed latent and
// rotated k_pe, with the tables' rows at the tokens' positions), expand_kv turns cached entries into
// keys and values, project_query gives the rotated queries.
#pragma once
#include "model/attention_layer.h"

namespace t6 {

class MlaAttention : public AttentionLayer {
 public:
  MlaAttention(const ModelWeights& weights, int64_t layer);
  void plan_activations(Arena& arena, int64_t batch, int64_t seq_len) override;
  int64_t scratch_elements(int64_t batch, int64_t seq_len) const override;
  void forward(const LayerContext& context, const Tensor& x, const Tensor& out) override;
  void backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) override;

  // A latent before (N, C) and after its norm (N, C), with the norm's inverse RMS per row (N).
  struct Latent {
    Tensor raw, rstd, normed;
  };
  // x (N, d), N = B·T rows; cos/sin (T, Dr/2) at the rows' positions. q (B, T, H, Dn + Dr), RoPE applied.
  void project_query(const Tensor& x, const Tensor& cos, const Tensor& sin, const Latent& latent, const Tensor& q) const;
  // The key/value latent of x and the shared key part k_pe (B, T, 1, Dr), RoPE applied.
  void project_kv_latent(const Tensor& x, const Tensor& cos, const Tensor& sin, const Latent& latent,
                         const Tensor& k_pe) const;
  // k (B, T, H, Dn + Dr) and v (B, T, H, Dv) from normed latents (N, Ckv) and k_pe; kv (B, T, H, Dn + Dv) is scratch.
  void expand_kv(const Tensor& normed_latent, const Tensor& k_pe, const Tensor& kv, const Tensor& k, const Tensor& v) const;

 private:
  struct Weights {
    Tensor q_a_proj, q_a_layernorm, q_b_proj, kv_a_layernorm, kv_a_latent, kv_a_rope, kv_b_proj, c_proj;
  };
  struct Shapes {
    Shape q, k, v, kv, k_pe;
  };
  Shapes shapes(int64_t batch, int64_t seq_len) const;
  // The backward's gradients in the layer scratch (fp32), and the copies of the matmul type of those
  // that enter matmuls (each the gradient itself where the types agree: the CPU backend).
  struct Backward {
    Tensor dout, dy, dq, dk, dv, dkv, dk_pe, dq_normed, dq_latent, dkv_normed, dkv_latent;
    Tensor dq_operand, dq_latent_operand, dkv_operand, dkv_latent_operand, dk_pe_operand, attention_scratch;
  };
  Backward carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t batch, int64_t seq_len) const;

  int64_t heads_, nope_dim_, rope_dim_, q_rank_, kv_rank_, value_dim_;
  DType matmul_dtype_;
  // kv_a_proj_with_mqa's rows split in two: the latent's (first Ckv) and k_pe's (last Dr).
  Weights weights_, grads_;
  // Saved for backward: both latents, q and k after RoPE, v, the heads' outputs and log-sum-exps.
  Latent query_latent_, kv_latent_;
  Tensor q_, k_pe_, k_, v_, y_, lse_;
};

}  // namespace t6
