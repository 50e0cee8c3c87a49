#include "model/gqa_attention.h"

#include "model/linear.h"

namespace t6 {

GqaAttention::GqaAttention(const ModelWeights& weights, int64_t layer) {
  const HeadLayout& layout = weights.table().heads();
  const ModelConfig& config = weights.config();
  heads_ = layout.local_heads;
  kv_heads_ = layout.local_kv_heads;
  head_dim_ = config.head_dim;
  matmul_dtype_ = weights.matmul_dtype();
  head_map_ = {layout.first_head, config.n_head / config.kv_heads(), layout.first_kv_head};
  const std::string prefix = str("transformer.h.", layer, ".attn.");
  auto bind = [&](const std::string& name, Tensor Weights::*member) {
    weights_.*member = weights.matmul_param(prefix + name + ".weight");
    grads_.*member = weights.grad(prefix + name + ".weight");
  };
  bind("c_q", &Weights::c_q);
  bind("c_k", &Weights::c_k);
  bind("c_v", &Weights::c_v);
  bind("c_proj", &Weights::c_proj);
}

void GqaAttention::plan_activations(Arena& arena, int64_t B, int64_t T) {
  q_ = arena.take({B, T, heads_, head_dim_}, matmul_dtype_);
  k_ = arena.take({B, T, kv_heads_, head_dim_}, matmul_dtype_);
  v_ = arena.take({B, T, kv_heads_, head_dim_}, matmul_dtype_);
  y_ = arena.take({B, T, heads_, head_dim_}, matmul_dtype_);
  lse_ = arena.take({B, heads_, T});
}

GqaAttention::Backward GqaAttention::carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t B,
                                                    int64_t T) const {
  Backward b;
  b.dout = matmul_operand_space(dout, matmul_dtype_, cursor);
  b.dy = cursor.take({B, T, heads_, head_dim_});
  b.dq = cursor.take({B, T, heads_, head_dim_});
  b.dk = cursor.take({B, T, kv_heads_, head_dim_});
  b.dv = cursor.take({B, T, kv_heads_, head_dim_});
  b.dq_operand = matmul_operand_space(b.dq, matmul_dtype_, cursor);
  b.dk_operand = matmul_operand_space(b.dk, matmul_dtype_, cursor);
  b.dv_operand = matmul_operand_space(b.dv, matmul_dtype_, cursor);
  b.attention_scratch = cursor.take({ops::attention_scratch_elements(T, true)});
  return b;
}

int64_t GqaAttention::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor cursor;
  // The incoming gradient is the fp32 residual stream's (B·T, d): only its shape and type are read.
  carve_backward(cursor, Tensor(nullptr, {B * T, weights_.c_proj.size(0)}, DType::F32), B, T);
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
  const Backward b = carve_backward(cursor, dout, context.batch, context.seq_len);
  fill_matmul_operand(b.dout, dout);
  linear_backward(b.dy, grads_.c_proj, b.dout, y_, weights_.c_proj, N, false);
  ops::attention_backward(b.dq, b.dk, b.dv, b.dy, q_, k_, v_, y_, lse_, b.attention_scratch, head_map_);
  ops::rope_backward(b.dq, context.rope_cos, context.rope_sin);
  ops::rope_backward(b.dk, context.rope_cos, context.rope_sin);
  fill_matmul_operand(b.dq_operand, b.dq);
  fill_matmul_operand(b.dk_operand, b.dk);
  fill_matmul_operand(b.dv_operand, b.dv);
  linear_backward(dx, grads_.c_q, b.dq_operand, x, weights_.c_q, N, false);
  linear_backward(dx, grads_.c_k, b.dk_operand, x, weights_.c_k, N, true);
  linear_backward(dx, grads_.c_v, b.dv_operand, x, weights_.c_v, N, true);
}

}  // namespace t6
