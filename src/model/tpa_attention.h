// Tensor Product Attention (docs/MODEL.md 1): six factor maps run as one GEMM, attention over the
// factors with RoPE on B_q and B_k inside (ops::tpa_rotary_attention_*, fused or materialised as
// LayerContext says), output projection. With `factorised_query` false it is TPA-KVonly:
// a plain c_q with RoPE for the query, factorised K and V (five maps, one GEMM).
#pragma once
#include <vector>

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
  // factor_maps: the five or six factor maps' weights as one (Σ, d) matrix, their rows stacked in the
  // parameter table's order (which places them back to back): the forward is one GEMM into the
  // packed (N, Σ) factors, the backward one GEMM for the weight gradient and one for dx.
  struct Weights {
    Tensor factor_maps, c_proj;
  };
  // Saved for backward. factors.A_q/B_q are unused in KVonly mode, q is unused in TPA mode.
  struct Activations {
    ops::TpaFactors factors;
    Tensor q, y, lse;
  };
  // The forward's buffers in the scratch: the factor maps' packed output (N, Σ), split into the
  // saved factors, and the attention's workspace.
  struct Forward {
    Tensor packed_factors, workspace;
  };
  // The backward's buffers in the scratch: the factor gradients (F32), packed side by side as the
  // weight matmuls' operand (N, Σ) of the saved inputs' type, dout as a matmul operand, dy (F32)
  // and the attention op's workspace.
  struct Backward {
    ops::TpaFactors factor_grads;
    Tensor packed_factor_grads, dout, dy, workspace;
  };
  // Elements of the attention op's workspace (in the F32 scratch).
  int64_t workspace_elements(int64_t batch, int64_t seq_len) const;
  // The factor maps' outputs (or their gradients) in the order of factor_maps' row blocks; KVonly's
  // first is the query (its gradient sits in A_q's place of the factor gradients).
  std::vector<Tensor> in_weight_order(const ops::TpaFactors& factors, const Tensor& query) const;
  void compute_factors(const LayerContext& context, const Tensor& x, const Tensor& packed_factors);
  ops::TpaFactors carve_factor_grads(ScratchCursor& cursor, int64_t batch, int64_t seq_len) const;
  Forward carve_forward(ScratchCursor& cursor, int64_t batch, int64_t seq_len) const;
  Backward carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t batch, int64_t seq_len) const;

  bool factorised_query_;
  int64_t heads_, head_dim_, q_rank_, rank_;
  DType matmul_dtype_;  // of the weights and saved activations (ModelWeights::matmul_dtype)
  Weights weights_, grads_;  // the matmul weights (bf16 on the CUDA backend) and their fp32 gradients
  Activations saved_;  // factors, q and y in matmul_dtype_, lse F32
};

}  // namespace t6
