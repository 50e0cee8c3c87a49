// Tensor Product Attention (docs/MODEL.md 1): six factor maps, attention over the factors with RoPE on
// B_q and B_k inside (ops::tpa_rotary_attention_*, fused or materialised as LayerContext says), output
// projection. With `factorised_query` false it is TPA-KVonly:
// a plain c_q with RoPE for the query, factorised K and V.
#pragma once
#include "model/attention_layer.h"

namespace t6 {

class TpaAttention : public AttentionLayer {
 public:
  TpaAttention(const ModelWeights& weights, int64_t layer);
  void plan_activations(Arena& arena, int64_t batch, int64_t seq_len) override;
  int64_t scratch_elements(int64_t batch, int64_t seq_len) const override;
  void forward(const LayerContext& context, const Tensor& x, const Tensor& out) override;
  void backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) override;

 private:
  struct Weights {
    Tensor W_A_q, W_A_k, W_A_v, W_B_q, W_B_k, W_B_v, c_q, c_proj;
  };
  // Saved for backward. factors.A_q/B_q are unused in KVonly mode, q is unused in TPA mode.
  struct Activations {
    ops::TpaFactors factors;
    Tensor q, y, lse;
  };
  // The backward's buffers in the scratch: the factor gradients (F32) with their matmul operands
  // (the same tensors on the CPU backend, bf16 copies on the CUDA backend), dout as a matmul
  // operand, dy (F32) and the attention op's workspace.
  struct Backward {
    ops::TpaFactors factor_grads, factor_grad_operands;
    Tensor dout, dy, workspace;
  };
  // Elements of the attention op's workspace (in the F32 scratch).
  int64_t workspace_elements(int64_t batch, int64_t seq_len) const;
  void compute_factors(const LayerContext& context, const Tensor& x);
  ops::TpaFactors carve_factor_grads(ScratchCursor& cursor, int64_t batch, int64_t seq_len) const;
  Backward carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t batch, int64_t seq_len) const;

  bool factorised_query_;
  int64_t heads_, head_dim_, q_rank_, rank_;
  DType matmul_dtype_;  // of the weights and saved activations (ModelWeights::matmul_dtype)
  Weights weights_, grads_;  // the matmul weights (bf16 on the CUDA backend) and their fp32 gradients
  Activations saved_;  // factors, q and y in matmul_dtype_, lse F32
};

}  // namespace t6
