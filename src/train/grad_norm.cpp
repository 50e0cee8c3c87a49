#include "train/grad_norm.h"

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace t6 {

void grad_statistics_into(const ModelWeights& weights, const Tensor& grads, int64_t begin, int64_t end,
                          Tensor statistics) {
  const ParamTable& table = weights.table();
  std::vector<Tensor> counted;
  counted.reserve(table.params().size());
  for (const LocalParam& entry : table.params()) {
    if (entry.spec.rule.kind == ShardRule::Kind::Replicated && table.tp_rank() != 0) continue;
    const int64_t first = std::max(entry.flat_offset, begin);
    const int64_t last = std::min(entry.flat_offset + entry.numel(), end);
    if (first < last) counted.push_back(grads.rows(first, last));
  }
  ops::tensor_list_statistics(statistics, counted);  // an empty list (nothing counted here) gives {0, 0}
}

double grad_square_sum(const ModelWeights& weights, const Tensor& grads, int64_t begin, int64_t end) {
  double statistics[2] = {0, 0};
  grad_statistics_into(weights, grads, begin, end, Tensor(statistics, {2}, DType::F64));
  return statistics[0];
}

double global_grad_norm(const ModelWeights& weights, const Tensor& grads, Communicator* tp) {
  double total = grad_square_sum(weights, grads, 0, weights.table().local_numel());
  if (tp && tp->size() > 1) tp->all_reduce(Tensor(&total, {1}, DType::F64), ReduceOp::Sum);
  return std::sqrt(total);
}

float clip_scale(double grad_norm, double max_norm) {
  if (max_norm <= 0) return 1.0f;
  return float(std::min(1.0, max_norm / (grad_norm + 1e-6)));
}

}  // namespace t6
