// The global gradient norm for clipping, counting every parameter exactly once: TP-split slices are
// summed over the TP group, replicated weights taken from TP rank 0 only (Megatron's rule; counting
// them on every rank would inflate the norm by the TP size).
#pragma once
#include "model/model_weights.h"
#include "parallel/communicator.h"

namespace t6 {

// statistics (F64 (2), on the gradients' device) = {sum of squares, number of NaN or ±inf elements}
// over the elements [begin, end) of this rank's flat gradient buffer that this rank counts (all of
// split weights; replicated ones on TP rank 0 only), before any reduction; ZeRO-1 ranks pass the
// range they hold reduced gradients for. One pass over every counted parameter
// (ops::tensor_list_statistics) that does not wait for the device, so a step reads both values with
// its loss, in its one synchronisation.
void grad_statistics_into(const ModelWeights& weights, const Tensor& grads, int64_t begin, int64_t end,
                          Tensor statistics);
// The sum of squares of grad_statistics_into, for gradients on the host.
double grad_square_sum(const ModelWeights& weights, const Tensor& grads, int64_t begin, int64_t end);

// sqrt of the sum over the TP group of grad_square_sum over the whole buffer; tp may be null.
double global_grad_norm(const ModelWeights& weights, const Tensor& grads, Communicator* tp);

// torch.nn.utils.clip_grad_norm_: scale = min(1, max_norm / (norm + 1e-6)); max_norm <= 0 disables.
float clip_scale(double grad_norm, double max_norm);

}  // namespace t6
