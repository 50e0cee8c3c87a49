#include "model/gqa_attention.h"

#include "model/linear.h"

namespace t6 {

GqaAttention::GqaAttention(const ModelWeights& weights, int64_t layer) {
  const HeadLayout& layout = weights.table().heads();
  const ModelConfig& config = weights.config();
  heads_ = layout.local_heads;
  kv_heads_ = layout.local_kv_heads;
  head_dim_ = config.head_dim;
  head_map_ = {layout.first_head, config.n_head / config.kv_heads(), layout.first_kv_head};
  const std::string prefix = str("transformer.h.", layer, ".attn.");
  auto bind = [&](const std::string& name, Tensor Weights::*member) {
    weights_.*member = weights.param(prefix + name + ".weight");
    grads_.*member = weights.grad(prefix + name + ".weight");
  };
  bind("c_q", &Weights::c_q);
  bind("c_k", &Weights::c_k);
  bind("c_v", &Weights::c_v);
  bind("c_proj", &Weights::c_proj);
}

void GqaAttention::plan_activations(Arena& arena, int64_t B, int64_t T) {
  q_ = arena.take({B, T, heads_, head_dim_});
  k_ = arena.take({B, T, kv_heads_, head_dim_});
  v_ = arena.take({B, T, kv_heads_, head_dim_});
  y_ = arena.take({B, T, heads_, head_dim_});
  lse_ = arena.take({B, heads_, T});
}

int64_t GqaAttention::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor cursor;
  cursor.take({B, T, heads_, head_dim_});     // dy
  cursor.take({B, T, heads_, head_dim_});     // dq
  cursor.take({B, T, kv_heads_, head_dim_});  // dk
  cursor.take({B, T, kv_heads_, head_dim_});  // dv
  cursor.take({ops::attention_scratch_elements(T, true)});
  return cursor.used();  // the forward's attention scratch fits in the same space
}

void GqaAttention::forward(const LayerContext& context, const Tensor& x, const Tensor& out) {
  const int64_t N = context.rows();
  linear_forward(q_, x, weights_.c_q, N);
  linear_forward(k_, x, weights_.c_k, N);
  linear_forward(v_, x, weights_.c_v, N);
  ops::rope_forward(q_, context.rope_cos, context.rope_sin);
  ops::rope_forward(k_, context.rope_cos, context.rope_sin);
  const Tensor attention_scratch =
      ScratchCursor(context.scratch).take({ops::attention_scratch_elements(context.seq_len, false)});
  ops::attention_forward(y_, lse_, q_, k_, v_, attention_scratch, head_map_);
  linear_forward(out, y_, weights_.c_proj, N);
}

void GqaAttention::backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) {
  const int64_t N = context.rows();
  ScratchCursor cursor(context.scratch);
  Tensor dy = cursor.take(y_.shape()), dq = cursor.take(q_.shape());
  Tensor dk = cursor.take(k_.shape()), dv = cursor.take(v_.shape());
  const Tensor attention_scratch = cursor.take({ops::attention_scratch_elements(context.seq_len, true)});
  linear_backward(dy, grads_.c_proj, dout, y_, weights_.c_proj, N, false);
  ops::attention_backward(dq, dk, dv, dy, q_, k_, v_, y_, lse_, attention_scratch, head_map_);
  ops::rope_backward(dq, context.rope_cos, context.rope_sin);
  ops::rope_backward(dk, context.rope_cos, context.rope_sin);
  linear_backward(dx, grads_.c_q, dq, x, weights_.c_q, N, false);
  linear_backward(dx, grads_.c_k, dk, x, weights_.c_k, N, true);
  linear_backward(dx, grads_.c_v, dv, x, weights_.c_v, N, true);
}

}  // namespace t6
