#include "train/grad_norm.h"

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace t6 {

double local_grad_square_sum(const ModelWeights& weights, const Tensor& grads) {
  const ParamTable& table = weights.table();
  double total = 0;
  for (const LocalParam& entry : table.params()) {
    if (entry.spec.rule.kind == ShardRule::Kind::Replicated && table.tp_rank() != 0) continue;
    total += ops::sum_of_squares(Tensor(grads.data<float>() + entry.flat_offset, entry.local_shape, DType::F32));
  }
  return total;
}

double global_grad_norm(const ModelWeights& weights, const Tensor& grads, Communicator* tp) {
  double total = local_grad_square_sum(weights, grads);
  if (tp && tp->size() > 1) tp->all_reduce(Tensor(&total, {1}, DType::F64), ReduceOp::Sum);
  return std::sqrt(total);
}

float clip_scale(double grad_norm, double max_norm) {
  if (max_norm <= 0) return 1.0f;
  return float(std::min(1.0, max_norm / (grad_norm + 1e-6)));
}

}  // namespace t6
