// The pre-norm block of docs/MODEL.md 2, written once for training (language_model.h) and generation
// (infer/decoder.h): middle = x + attention(rmsnorm(x)), out = middle + mlp(rmsnorm(middle)), each
// branch's output summed over the tensor-parallel ranks. The attention is the caller's: the model's
// layer over whole sequences, or the decoder's step over its cache.
#pragma once
#include "kernels/ops.h"
#include "model/layer_context.h"
#include "model/mlp.h"

namespace t6 {

// The block's activations (N, d) and inverse RMS (N): training keeps one set per layer for backward;
// generation reuses one set, and may pass the same tensors as norm1 and norm2 (norm1 is dead once the
// attention has run). out may be x.
struct BlockActivations {
  Tensor norm1, rstd1, middle, norm2, rstd2;
};

// attention(normed, branch) writes the attention branch (N, d) of the normed rows.
template <class Attention>
void transformer_block_forward(const LayerContext& context, const Tensor& x, const Tensor& out,
                               const BlockActivations& a, const Tensor& branch, Attention&& attention, Mlp& mlp) {
  ops::rmsnorm_forward(a.norm1, a.rstd1, x);
  attention(a.norm1, branch);
  reduce_over_tp(context, branch);
  ops::add(a.middle, x, branch);
  ops::rmsnorm_forward(a.norm2, a.rstd2, a.middle);
  mlp.forward(context, a.norm2, branch);
  reduce_over_tp(context, branch);
  ops::add(out, a.middle, branch);
}

}  // namespace t6
