// The global gradient norm for clipping, counting every parameter exactly once: TP-split slices are
// summed over the TP group, replicated weights taken from TP rank 0 only (Megatron's rule; counting
// them on every rank would inflate the norm by the TP size).
#pragma once
#include "model/model_weights.h"
#include "parallel/communicator.h"

namespace t6 {

// Sum of squares of this rank's share of the gradient (before any reduction over TP).
double local_grad_square_sum(const ModelWeights& weights, const Tensor& grads);

// sqrt of the sum over the TP group of local_grad_square_sum; tp may be null.
double global_grad_norm(const ModelWeights& weights, const Tensor& grads, Communicator* tp);

// torch.nn.utils.clip_grad_norm_: scale = min(1, max_norm / (norm + 1e-6)); max_norm <= 0 disables.
float clip_scale(double grad_norm, double max_norm);

}  // namespace t6
