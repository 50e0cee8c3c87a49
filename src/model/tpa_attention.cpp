#include "model/tpa_attention.h"

#include <algorithm>
#include <string>

#include "model/linear.h"

namespace t6 {

namespace {
// The factor maps of a layer in the parameter table's order (param_table.cpp), the order of their
// rows in the stacked matrix; TpaAttention::in_weight_order lists the outputs alike.
std::vector<std::string> factor_map_names(bool factorised_query, int64_t layer) {
  const std::vector<std::string> maps =
      factorised_query ? std::vector<std::string>{"W_A_q", "W_A_k", "W_A_v", "W_B_q", "W_B_k", "W_B_v"}
                       : std::vector<std::string>{"c_q", "W_A_k", "W_A_v", "W_B_k", "W_B_v"};
  std::vector<std::string> names;
  for (const std::string& map : maps) names.push_back(str("transformer.h.", layer, ".attn.c_qkv.", map, ".weight"));
  return names;
}
}  // namespace

TpaAttention::TpaAttention(const ModelWeights& weights, int64_t layer)
    : factorised_query_(weights.config().factorised_query()),
      heads_(weights.table().heads().local_heads),
      head_dim_(weights.config().head_dim),
      q_rank_(weights.config().q_rank),
      rank_(weights.config().rank),
      matmul_dtype_(weights.matmul_dtype()) {
  const std::vector<std::string> maps = factor_map_names(factorised_query_, layer);
  weights_.factor_maps = weights.stacked_matmul_params(maps);
  grads_.factor_maps = weights.stacked_grads(maps);
  const std::string c_proj = str("transformer.h.", layer, ".attn.c_proj.weight");
  weights_.c_proj = weights.matmul_param(c_proj);
  grads_.c_proj = weights.grad(c_proj);
}

std::vector<Tensor> TpaAttention::in_weight_order(const ops::TpaFactors& f, const Tensor& query) const {
  if (factorised_query_) return {f.A_q, f.A_k, f.A_v, f.B_q, f.B_k, f.B_v};
  return {query, f.A_k, f.A_v, f.B_k, f.B_v};
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

TpaAttention::Forward TpaAttention::carve_forward(ScratchCursor& cursor, int64_t B, int64_t T) const {
  Forward f;
  f.packed_factors = cursor.take({B * T, weights_.factor_maps.size(0)}, matmul_dtype_);
  f.workspace = cursor.take({workspace_elements(B, T)});
  return f;
}

TpaAttention::Backward TpaAttention::carve_backward(ScratchCursor& cursor, const Tensor& dout, int64_t B,
                                                    int64_t T) const {
  Backward b;
  b.factor_grads = carve_factor_grads(cursor, B, T);
  b.packed_factor_grads = cursor.take({B * T, weights_.factor_maps.size(0)}, matmul_dtype_);
  b.dout = matmul_operand_space(dout, matmul_dtype_, cursor);
  b.dy = cursor.take({B, T, heads_, head_dim_});
  b.workspace = cursor.take({workspace_elements(B, T)});
  return b;
}

int64_t TpaAttention::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor forward, backward;
  carve_forward(forward, B, T);
  // The incoming gradient is the fp32 residual stream's (B·T, d): only its shape and type are read.
  carve_backward(backward, Tensor(nullptr, {B * T, weights_.c_proj.size(0)}, DType::F32), B, T);
  return std::max(forward.used(), backward.used());
}

int64_t TpaAttention::workspace_elements(int64_t B, int64_t T) const {
  return factorised_query_ ? ops::tpa_rotary_attention_workspace_elements(B, T, heads_, q_rank_, rank_, head_dim_)
                           : ops::tpa_attention_workspace_elements(B, T, heads_, head_dim_);
}

// One GEMM gives every factor map's output side by side; the split hands the TPA ops contiguous
// factors. T6 keeps B_q and B_k as the maps give them: tpa_rotary_attention_* rotates them (on chip
// on the fused path). KVonly contracts k itself, from B_k rotated here.
void TpaAttention::compute_factors(const LayerContext& context, const Tensor& x, const Tensor& packed_factors) {
  linear_forward(packed_factors, x, weights_.factor_maps, context.rows());
  ops::split_columns(in_weight_order(saved_.factors, saved_.q), packed_factors);
  if (!factorised_query_) {
    ops::rope_forward(saved_.q, context.rope_cos, context.rope_sin);
    ops::rope_forward(saved_.factors.B_k, context.rope_cos, context.rope_sin);
  }
}

void TpaAttention::forward(const LayerContext& context, const Tensor& x, const Tensor& out) {
  const int64_t B = context.batch, T = context.seq_len;
  ScratchCursor cursor(context.scratch);
  const Forward f = carve_forward(cursor, B, T);
  compute_factors(context, x, f.packed_factors);
  if (factorised_query_) {
    ops::tpa_rotary_attention_forward(saved_.y, saved_.lse, saved_.factors, context.rope_cos, context.rope_sin,
                                      f.workspace, context.tpa_attention);
  } else {
    // KVonly: k and v from their factors, then plain attention with the plain query.
    ScratchCursor parts(f.workspace);
    Tensor k = parts.take({B, T, heads_, head_dim_}), v = parts.take({B, T, heads_, head_dim_});
    ops::tpa_contract_forward(k, saved_.factors.A_k, saved_.factors.B_k);
    ops::tpa_contract_forward(v, saved_.factors.A_v, saved_.factors.B_v);
    ops::attention_forward(saved_.y, saved_.lse, saved_.q, k, v, parts.take({ops::attention_scratch_elements(T, false)}));
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

  // The factor gradients (fp32 until here) enter the weight matmuls side by side, as the saved
  // inputs' type: one GEMM for the stacked weights' gradient, one for dx.
  ops::pack_columns(b.packed_factor_grads, in_weight_order(d, d.A_q));
  linear_backward(dx, grads_.factor_maps, b.packed_factor_grads, x, weights_.factor_maps, N, false);
}

}  // namespace t6
