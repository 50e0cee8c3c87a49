// The paper's baselines: multi-head attention (llama_mha) and grouped-query attention (llama_gqa;
// MQA when group_size = n_head). Plain q/k/v projections, RoPE on q and k, causal attention where
// query head h reads KV head h / group_size, output projection.
#pragma once
#include "model/attention_layer.h"

namespace t6 {

class GqaAttention : public AttentionLayer {
 public:
  GqaAttention(const ModelWeights& weights, int64_t layer);
  void plan_activations(Arena& arena, int64_t batch, int64_t seq_len) override;
  int64_t scratch_elements(int64_t batch, int64_t seq_len) const override;
  void forward(const LayerContext& context, const Tensor& x, const Tensor& out) override;
  void backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) override;

 private:
  struct Weights {
    Tensor c_q, c_k, c_v, c_proj;
  };
  // The backward's buffers in the scratch: dout as a matmul operand, dy, dq, dk, dv (F32) and the
  // last three as matmul operands (the same tensors on the CPU backend, bf16 copies on the CUDA
  // backend), and the attention's scratch.
  struct Backward {
    Tensor dout, dy, dq, dk, dv, dq_operand, dk_operand, dv_operand, attention_scratch;
  };
  Backward carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t batch, int64_t seq_len) const;

  int64_t heads_, kv_heads_, head_dim_;
  DType matmul_dtype_;  // of the weights and saved activations (ModelWeights::matmul_dtype)
  ops::HeadMap head_map_;
  Weights weights_, grads_;  // the matmul weights (bf16 on the CUDA backend) and their fp32 gradients
  Tensor q_, k_, v_, y_, lse_;  // saved for backward (q and k after RoPE), in matmul_dtype_ but lse F32
};

}  // namespace t6
