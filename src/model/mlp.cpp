#include "model/mlp.h"

#include "model/linear.h"

namespace t6 {

Mlp::Mlp(const ModelWeights& weights, int64_t layer) {
  const std::string prefix = str("transformer.h.", layer, ".mlp.");
  fc1_ = weights.param(prefix + "c_fc1.weight");
  fc2_ = weights.param(prefix + "c_fc2.weight");
  proj_ = weights.param(prefix + "c_proj.weight");
  dfc1_ = weights.grad(prefix + "c_fc1.weight");
  dfc2_ = weights.grad(prefix + "c_fc2.weight");
  dproj_ = weights.grad(prefix + "c_proj.weight");
  hidden_ = weights.table().find(prefix + "c_fc1.weight").local_shape[0];  // also without buffers (a plan)
}

void Mlp::plan_activations(Arena& arena, int64_t B, int64_t T) {
  pre_gate_ = arena.take({B * T, hidden_});
  up_ = arena.take({B * T, hidden_});
  gated_ = arena.take({B * T, hidden_});
}

int64_t Mlp::scratch_elements(int64_t B, int64_t T) const {
  ScratchCursor cursor;
  for (int buffer = 0; buffer < 3; ++buffer) cursor.take({B * T, hidden_});  // dgated, dpre_gate, dup
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
  Tensor dgated = cursor.take(gated_.shape()), dpre_gate = cursor.take(gated_.shape()), dup = cursor.take(gated_.shape());
  linear_backward(dgated, dproj_, dout, gated_, proj_, N, false);
  ops::swiglu_backward(dpre_gate, dup, dgated, pre_gate_, up_);
  linear_backward(dx, dfc1_, dpre_gate, x, fc1_, N, false);
  linear_backward(dx, dfc2_, dup, x, fc2_, N, true);
}

}  // namespace t6
