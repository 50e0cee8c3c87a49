#include "model/mlp.h"

#include "model/linear.h"

namespace t6 {

Mlp::Mlp(const ModelWeights& weights, int64_t layer)
    : width_(weights.config().n_embd), matmul_dtype_(weights.matmul_dtype()) {
  const std::string prefix = str("transformer.h.", layer, ".mlp.");
  fc1_ = weights.matmul_param(prefix + "c_fc1.weight");
  fc2_ = weights.matmul_param(prefix + "c_fc2.weight");
  proj_ = weights.matmul_param(prefix + "c_proj.weight");
  dfc1_ = weights.grad(prefix + "c_fc1.weight");
  dfc2_ = weights.grad(prefix + "c_fc2.weight");
  dproj_ = weights.grad(prefix + "c_proj.weight");
  hidden_ = weights.table().find(prefix + "c_fc1.weight").local_shape[0];  // also without buffers (a plan)
}

void Mlp::plan_activations(Arena& arena, int64_t B, int64_t T) {
  pre_gate_ = arena.take({B * T, hidden_}, matmul_dtype_);
  up_ = arena.take({B * T, hidden_}, matmul_dtype_);
  gated_ = arena.take({B * T, hidden_}, matmul_dtype_);
}

Mlp::Gradients Mlp::carve_gradients(ScratchCursor& cursor, const Tensor& dout) const {
  const int64_t rows = dout.numel() / width_;
  Gradients g;
  g.dout = matmul_operand_space(dout, matmul_dtype_, cursor);
  g.dgated = cursor.take({rows, hidden_});
  g.dpre_gate = cursor.take({rows, hidden_}, matmul_dtype_);
  g.dup = cursor.take({rows, hidden_}, matmul_dtype_);
  return g;
}

int64_t Mlp::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor cursor;
  carve_gradients(cursor, Tensor(nullptr, {B * T, width_}, DType::F32));  // the residual stream's gradient
  return cursor.used();
}

void Mlp::share_activations(const Mlp& owner) {
  pre_gate_ = owner.pre_gate_, up_ = owner.up_, gated_ = owner.gated_;
}

void Mlp::forward(const LayerContext& context, const Tensor& x, const Tensor& out) {
  const int64_t N = context.rows();
  const Tensor pre_gate = pre_gate_.rows(0, N), up = up_.rows(0, N), gated = gated_.rows(0, N);
  linear_forward(pre_gate, x, fc1_, N);
  linear_forward(up, x, fc2_, N);
  ops::swiglu_forward(gated, pre_gate, up);
  linear_forward(out, gated, proj_, N);
}

void Mlp::backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) {
  const int64_t N = context.rows();
  ScratchCursor cursor(context.scratch);
  const Gradients g = carve_gradients(cursor, dout);
  fill_matmul_operand(g.dout, dout);
  linear_backward(g.dgated, dproj_, g.dout, gated_, proj_, N, false);
  ops::swiglu_backward(g.dpre_gate, g.dup, g.dgated, pre_gate_, up_);
  linear_backward(dx, dfc1_, g.dpre_gate, x, fc1_, N, false);
  linear_backward(dx, dfc2_, g.dup, x, fc2_, N, true);
}

}  // namespace t6
