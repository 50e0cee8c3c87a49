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
  int64_t heads_, kv_heads_, head_dim_;
  ops::HeadMap head_map_;
  Weights weights_, grads_;
  Tensor q_, k_, v_, y_, lse_;  // saved for backward (q and k after RoPE)
};

}  // namespace t6
