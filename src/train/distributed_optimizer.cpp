#include "train/distributed_optimizer.h"

#include <algorithm>
#include <cmath>

#include "train/grad_norm.h"

namespace t6 {

namespace {
// DP all-reduce in buckets of this many elements (64 MiB of fp32): keeps each message large enough
// for full bandwidth while bounding the memory a communicator may stage.
constexpr int64_t kBucketElements = int64_t(1) << 24;

bool spans_ranks(Communicator* communicator) { return communicator && communicator->size() > 1; }
}  // namespace

Range optimizer_state_range(const ModelWeights& weights, int dp_rank, int dp_size, bool zero1) {
  if (!zero1 || dp_size <= 1) return {0, weights.table().local_numel()};
  T6_ASSERT(weights.padded_numel() % dp_size == 0);
  const int64_t shard = weights.padded_numel() / dp_size;
  return {shard * dp_rank, shard * (dp_rank + 1)};
}

DistributedOptimizer::DistributedOptimizer(ModelWeights& weights, const AdamWSettings& settings, Communicator* tp,
                                           Communicator* dp, bool zero1)
    : weights_(weights),
      tp_(tp),
      dp_(dp),
      zero1_(zero1 && spans_ranks(dp)),
      state_(optimizer_state_range(weights, dp ? dp->rank() : 0, dp ? dp->size() : 1, zero1_)),
      adamw_(state_.size(), settings, weights.device()) {}

void DistributedOptimizer::reduce_partial_gradients_over_tp() {
  if (!spans_ranks(tp_)) return;
  for (const LocalParam& entry : weights_.table().params())
    if (entry.spec.rule.partial_gradient) tp_->all_reduce(weights_.grad(entry), ReduceOp::Sum);
}

void DistributedOptimizer::average_gradients_over_dp() {
  if (!spans_ranks(dp_)) return;
  const Tensor grads = weights_.padded_grads();
  if (zero1_) {
    // Chunk r of the padded buffer ends up reduced on DP rank r, in place.
    dp_->reduce_scatter(grads, grads.rows(state_.begin, state_.end), ReduceOp::Avg);
    return;
  }
  for (int64_t begin = 0; begin < grads.numel(); begin += kBucketElements)
    dp_->all_reduce(grads.rows(begin, std::min(grads.numel(), begin + kBucketElements)), ReduceOp::Avg);
}

void DistributedOptimizer::reduce_gradients(Tensor local_statistics) {
  reduce_partial_gradients_over_tp();
  average_gradients_over_dp();
  // With ZeRO-1 each DP rank holds the reduced gradient of its range only.
  const int64_t begin = zero1_ ? state_.begin : 0, end = zero1_ ? state_.end : weights_.table().local_numel();
  grad_statistics_into(weights_, weights_.grads(), begin, end, local_statistics);
}

DistributedOptimizer::GlobalNorm DistributedOptimizer::global_norm(double local_square_sum, double local_non_finite) {
  double totals[2] = {local_square_sum, local_non_finite};
  // Sum over DP (ZeRO-1 ranks hold disjoint ranges), then over TP.
  if (zero1_) dp_->all_reduce(Tensor(totals, {2}, DType::F64), ReduceOp::Sum);
  if (spans_ranks(tp_)) tp_->all_reduce(Tensor(totals, {2}, DType::F64), ReduceOp::Sum);
  return {std::sqrt(totals[0]), totals[1]};
}

void DistributedOptimizer::apply(float lr, double max_norm, double grad_norm) {
  T6_ASSERT(std::isfinite(grad_norm));
  const float scale = clip_scale(grad_norm, max_norm);
  const Tensor params = weights_.padded_params(), grads = weights_.padded_grads();
  const Tensor matmul_copy = weights_.padded_matmul_copy();  // empty on the CPU backend
  const auto shard = [&](const Tensor& buffer) { return buffer.rows(state_.begin, state_.end); };
  adamw_.step(shard(params), shard(grads), lr, scale, matmul_copy.empty() ? Tensor() : shard(matmul_copy));
  if (!zero1_) return;
  dp_->all_gather(shard(params), params);
  // Every rank's matmuls read the whole bf16 copy: gathered as AdamW rounded it, in half the bytes.
  if (!matmul_copy.empty()) dp_->all_gather(shard(matmul_copy), matmul_copy);
}

}  // namespace t6
