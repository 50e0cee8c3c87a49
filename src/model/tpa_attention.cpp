#include "model/tpa_attention.h"

#include "model/linear.h"

namespace t6 {

namespace {
// The six factors of ops::TpaFactors, for loops over them. KVonly leaves B_q unset, and A_q among the
// saved factors (its gradients put q's in A_q's place).
constexpr Tensor ops::TpaFactors::*kFactors[] = {&ops::TpaFactors::A_q, &ops::TpaFactors::B_q, &ops::TpaFactors::A_k,
                                                 &ops::TpaFactors::B_k, &ops::TpaFactors::A_v, &ops::TpaFactors::B_v};
bool is_set(const Tensor& factor) { return factor.ndim() > 0; }
}  // namespace

TpaAttention::TpaAttention(const ModelWeights& weights, int64_t layer)
    : factorised_query_(weights.config().factorised_query()),
      heads_(weights.table().heads().local_heads),
      head_dim_(weights.config().head_dim),
      q_rank_(weights.config().q_rank),
      rank_(weights.config().rank),
      matmul_dtype_(weights.matmul_dtype()) {
  const std::string prefix = str("transformer.h.", layer, ".attn.");
  auto bind = [&](const std::string& name, Tensor Weights::*member) {
    weights_.*member = weights.matmul_param(prefix + name + ".weight");
    grads_.*member = weights.grad(prefix + name + ".weight");
  };
  if (factorised_query_) {
    bind("c_qkv.W_A_q", &Weights::W_A_q);
    bind("c_qkv.W_B_q", &Weights::W_B_q);
  } else {
    bind("c_qkv.c_q", &Weights::c_q);
  }
  bind("c_qkv.W_A_k", &Weights::W_A_k);
  bind("c_qkv.W_A_v", &Weights::W_A_v);
  bind("c_qkv.W_B_k", &Weights::W_B_k);
  bind("c_qkv.W_B_v", &Weights::W_B_v);
  bind("c_proj", &Weights::c_proj);
}

void TpaAttention::plan_activations(Arena& arena, int64_t batch, int64_t seq_len) {
  const int64_t B = batch, T = seq_len, H = heads_, D = head_dim_;
  const DType dtype = matmul_dtype_;
  if (factorised_query_) {
    saved_.factors.A_q = arena.take({B, T, H, q_rank_}, dtype);
    saved_.factors.B_q = arena.take({B, T, q_rank_, D}, dtype);
  } else {
    saved_.q = arena.take({B, T, H, D}, dtype);
  }
  saved_.factors.A_k = arena.take({B, T, H, rank_}, dtype);
  saved_.factors.B_k = arena.take({B, T, rank_, D}, dtype);
  saved_.factors.A_v = arena.take({B, T, H, rank_}, dtype);
  saved_.factors.B_v = arena.take({B, T, rank_, D}, dtype);
  saved_.y = arena.take({B, T, H, D}, dtype);
  saved_.lse = arena.take({B, H, T});
}

ops::TpaFactors TpaAttention::carve_factor_grads(ScratchCursor& cursor, int64_t B, int64_t T) const {
  ops::TpaFactors grads;
  if (factorised_query_) {
    grads.A_q = cursor.take({B, T, heads_, q_rank_});
    grads.B_q = cursor.take({B, T, q_rank_, head_dim_});
  } else {
    grads.A_q = cursor.take({B, T, heads_, head_dim_});  // KVonly: the gradient of q itself
  }
  grads.A_k = cursor.take({B, T, heads_, rank_});
  grads.B_k = cursor.take({B, T, rank_, head_dim_});
  grads.A_v = cursor.take({B, T, heads_, rank_});
  grads.B_v = cursor.take({B, T, rank_, head_dim_});
  return grads;
}

TpaAttention::Backward TpaAttention::carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t B,
                                                    int64_t T) const {
  Backward b;
  b.factor_grads = carve_factor_grads(cursor, B, T);
  ops::TpaFactors& operands = b.factor_grad_operands;
  const ops::TpaFactors& grads = b.factor_grads;
  for (auto member : kFactors)
    if (is_set(grads.*member)) operands.*member = matmul_operand_space(grads.*member, matmul_dtype_, cursor);
  b.dout = matmul_operand_space(dout, matmul_dtype_, cursor);
  b.dy = cursor.take({B, T, heads_, head_dim_});
  b.workspace = cursor.take({workspace_elements(B, T)});
  return b;
}

int64_t TpaAttention::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor cursor;
  // The incoming gradient is the fp32 residual stream's (B·T, d): only its shape and type are read.
  carve_backward(cursor, Tensor(nullptr, {B * T, weights_.c_proj.size(0)}, DType::F32), B, T);
  return cursor.used();
}

int64_t TpaAttention::workspace_elements(int64_t B, int64_t T) const {
  return factorised_query_ ? ops::tpa_rotary_attention_workspace_elements(B, T, heads_, q_rank_, rank_, head_dim_)
                           : ops::tpa_attention_workspace_elements(B, T, heads_, head_dim_);
}

// T6 keeps B_q and B_k as the linear maps give them: tpa_rotary_attention_* rotates them (on chip
// on the fused path). KVonly contracts k itself, from B_k rotated here.
void TpaAttention::compute_factors(const LayerContext& context, const Tensor& x) {
  const int64_t N = context.rows();
  ops::TpaFactors& f = saved_.factors;
  if (factorised_query_) {
    linear_forward(f.A_q, x, weights_.W_A_q, N);
    linear_forward(f.B_q, x, weights_.W_B_q, N);
  } else {
    linear_forward(saved_.q, x, weights_.c_q, N);
    ops::rope_forward(saved_.q, context.rope_cos, context.rope_sin);
  }
  linear_forward(f.A_k, x, weights_.W_A_k, N);
  linear_forward(f.A_v, x, weights_.W_A_v, N);
  linear_forward(f.B_k, x, weights_.W_B_k, N);
  linear_forward(f.B_v, x, weights_.W_B_v, N);
  if (!factorised_query_) ops::rope_forward(f.B_k, context.rope_cos, context.rope_sin);
}

void TpaAttention::forward(const LayerContext& context, const Tensor& x, const Tensor& out) {
  compute_factors(context, x);
  ScratchCursor cursor(context.scratch);
  const int64_t B = context.batch, T = context.seq_len;
  if (factorised_query_) {
    ops::tpa_rotary_attention_forward(saved_.y, saved_.lse, saved_.factors, context.rope_cos, context.rope_sin,
                                      cursor.take({workspace_elements(B, T)}), context.tpa_attention);
  } else {
    // KVonly: k and v from their factors, then plain attention with the plain query.
    Tensor k = cursor.take({B, T, heads_, head_dim_}), v = cursor.take({B, T, heads_, head_dim_});
    ops::tpa_contract_forward(k, saved_.factors.A_k, saved_.factors.B_k);
    ops::tpa_contract_forward(v, saved_.factors.A_v, saved_.factors.B_v);
    ops::attention_forward(saved_.y, saved_.lse, saved_.q, k, v, cursor.take({ops::attention_scratch_elements(T, false)}));
  }
  linear_forward(out, saved_.y, weights_.c_proj, context.rows());
}

void TpaAttention::backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) {
  const int64_t N = context.rows(), B = context.batch, T = context.seq_len;
  ScratchCursor cursor(context.scratch);
  const Backward b = carve_backward(cursor, dout, B, T);
  const ops::TpaFactors& d = b.factor_grads;
  fill_matmul_operand(b.dout, dout);
  linear_backward(b.dy, grads_.c_proj, b.dout, saved_.y, weights_.c_proj, N, false);

  const ops::TpaFactors& f = saved_.factors;
  if (factorised_query_) {
    ops::tpa_rotary_attention_backward(d, b.dy, saved_.y, saved_.lse, f, context.rope_cos, context.rope_sin,
                                       b.workspace, context.tpa_attention);  // dB_q and dB_k through RoPEᵀ already
  } else {
    ScratchCursor parts(b.workspace);
    Tensor k = parts.take({B, T, heads_, head_dim_}), v = parts.take({B, T, heads_, head_dim_});
    Tensor dk = parts.take({B, T, heads_, head_dim_}), dv = parts.take({B, T, heads_, head_dim_});
    ops::tpa_contract_forward(k, f.A_k, f.B_k);
    ops::tpa_contract_forward(v, f.A_v, f.B_v);
    ops::attention_backward(d.A_q, dk, dv, b.dy, saved_.q, k, v, saved_.y, saved_.lse,
                            parts.take({ops::attention_scratch_elements(T, true)}));
    ops::tpa_contract_backward(d.A_k, d.B_k, dk, f.A_k, f.B_k);
    ops::tpa_contract_backward(d.A_v, d.B_v, dv, f.A_v, f.B_v);
    // RoPE's transpose takes the gradients of the rotated k factor and q back to the projections' outputs.
    ops::rope_backward(d.B_k, context.rope_cos, context.rope_sin);
    ops::rope_backward(d.A_q, context.rope_cos, context.rope_sin);
  }

  // The factor gradients enter the weight-gradient matmuls as the saved inputs' type (fp32 until here).
  const ops::TpaFactors& g = b.factor_grad_operands;
  for (auto member : kFactors)
    if (is_set(g.*member)) fill_matmul_operand(g.*member, d.*member);
  if (factorised_query_) {
    linear_backward(dx, grads_.W_A_q, g.A_q, x, weights_.W_A_q, N, false);
    linear_backward(dx, grads_.W_B_q, g.B_q, x, weights_.W_B_q, N, true);
  } else {
    linear_backward(dx, grads_.c_q, g.A_q, x, weights_.c_q, N, false);
  }
  linear_backward(dx, grads_.W_A_k, g.A_k, x, weights_.W_A_k, N, true);
  linear_backward(dx, grads_.W_A_v, g.A_v, x, weights_.W_A_v, N, true);
  linear_backward(dx, grads_.W_B_k, g.B_k, x, weights_.W_B_k, N, true);
  linear_backward(dx, grads_.W_B_v, g.B_v, x, weights_.W_B_v, N, true);
}

}  // namespace t6
