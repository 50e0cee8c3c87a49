#include "train/distributed_optimizer.h"

#include <algorithm>
#include <cmath>

#include "train/grad_norm.h"

namespace t6 {

namespace {
bool spans_ranks(Communicator* communicator) { return communicator && communicator->size() > 1; }

// Whole parameters from the end of the buffer back (the order the backward finishes them); the
// last bucket takes the padding, the first starts at element 0.
std::vector<DistributedOptimizer::Bucket> plan_buckets(const ModelWeights& weights, int64_t bucket_elements) {
  const std::vector<LocalParam>& params = weights.table().params();
  std::vector<DistributedOptimizer::Bucket> buckets;
  int64_t end = weights.padded_numel();
  for (size_t index = params.size(); index-- > 0;) {
    const int64_t begin = params[index].flat_offset;
    if (end - begin >= bucket_elements || index == 0) {
      buckets.push_back({int64_t(index), {index == 0 ? 0 : begin, end}});
      end = begin;
    }
  }
  return buckets;
}
}  // namespace

int64_t dp_bucket_elements(double bucket_mib) {
  return std::max<int64_t>(1, int64_t(bucket_mib * double(1 << 20) / double(sizeof(float))));
}

Range optimizer_state_range(const ModelWeights& weights, int dp_rank, int dp_size, bool zero1) {
  if (!zero1 || dp_size <= 1) return {0, weights.table().local_numel()};
  T6_ASSERT(weights.padded_numel() % dp_size == 0);
  const int64_t shard = weights.padded_numel() / dp_size;
  return {shard * dp_rank, shard * (dp_rank + 1)};
}

DistributedOptimizer::DistributedOptimizer(ModelWeights& weights, const AdamWSettings& settings, ReductionGroups device,
                                           ReductionGroups host, bool zero1, int64_t bucket_elements)
    : weights_(weights),
      device_(device),
      host_(host),
      zero1_(zero1 && spans_ranks(device.dp)),
      state_(optimizer_state_range(weights, device.dp ? device.dp->rank() : 0, device.dp ? device.dp->size() : 1,
                                   zero1_)),
      adamw_(state_.size(), settings, weights.device()) {
  if (spans_ranks(device.dp)) buckets_ = plan_buckets(weights, bucket_elements);
  unreduced_end_ = int64_t(weights.table().params().size());
}

void DistributedOptimizer::begin_overlapped_reduction() { overlapping_ = true; }

void DistributedOptimizer::gradients_final_from(int64_t first_param) {
  if (overlapping_) reduce_final_gradients(first_param);
}

// TP first: a replicated weight's DP mean must be taken of its TP sum. The TP all-reduce lets the
// compute stream wait for it, so the DP bucket that starts after it sees the sum. Adjacent
// partial-gradient parameters (T6's W_B_q, W_B_k, W_B_v) are summed by one all-reduce: one launch,
// or one staged copy for MPI, instead of one each.
void DistributedOptimizer::reduce_final_gradients(int64_t first_param) {
  const std::vector<LocalParam>& params = weights_.table().params();
  const Tensor grads = weights_.padded_grads();
  if (spans_ranks(device_.tp)) {
    Range run{0, 0};  // flat elements of the adjacent partial gradients not yet summed
    const auto sum_run = [&] {
      if (run.size() > 0) device_.tp->all_reduce(grads.rows(run.begin, run.end), ReduceOp::Sum);
      run = {0, 0};
    };
    for (int64_t index = first_param; index < unreduced_end_; ++index) {
      const LocalParam& param = params[size_t(index)];
      if (!param.spec.rule.partial_gradient) {
        sum_run();
        continue;
      }
      if (run.size() > 0 && run.end != param.flat_offset) sum_run();
      if (run.size() == 0) run.begin = param.flat_offset;
      run.end = param.flat_offset + param.numel();
    }
    sum_run();
  }
  unreduced_end_ = std::min(unreduced_end_, first_param);
  for (; next_bucket_ < buckets_.size() && buckets_[next_bucket_].first_param >= first_param; ++next_bucket_)
    start_bucket(buckets_[next_bucket_]);
}

// ZeRO-1's shards are chunks of the padded buffer (optimizer_state_range), which buckets of whole
// parameters do not follow: a bucket's piece inside shard r is reduced to rank r, the only rank
// that reads it (AdamW, the norm); the other ranks' copies of it are left undefined.
void DistributedOptimizer::start_bucket(const Bucket& bucket) {
  const Tensor grads = weights_.padded_grads();
  const Range elements = bucket.elements;
  if (!zero1_) {
    device_.dp->start_all_reduce(grads.rows(elements.begin, elements.end), ReduceOp::Avg);
    return;
  }
  const int64_t shard = state_.size();
  for (int64_t owner = elements.begin / shard; owner * shard < elements.end; ++owner) {
    const int64_t begin = std::max(elements.begin, owner * shard), end = std::min(elements.end, (owner + 1) * shard);
    device_.dp->start_reduce(grads.rows(begin, end), ReduceOp::Avg, int(owner));
  }
}

void DistributedOptimizer::reduce_gradients(Tensor local_statistics) {
  reduce_final_gradients(0);
  if (!buckets_.empty()) device_.dp->finish_started();
  overlapping_ = false;
  unreduced_end_ = int64_t(weights_.table().params().size());
  next_bucket_ = 0;
  // With ZeRO-1 each DP rank holds the reduced gradient of its range only.
  const int64_t begin = zero1_ ? state_.begin : 0, end = zero1_ ? state_.end : weights_.table().local_numel();
  grad_statistics_into(weights_, weights_.grads(), begin, end, local_statistics);
}

DistributedOptimizer::GlobalNorm DistributedOptimizer::global_norm(double local_square_sum, double local_non_finite) {
  double totals[2] = {local_square_sum, local_non_finite};
  // Sum over DP (ZeRO-1 ranks hold disjoint ranges), then over TP.
  if (zero1_) host_.dp->all_reduce(Tensor(totals, {2}, DType::F64), ReduceOp::Sum);
  if (spans_ranks(host_.tp)) host_.tp->all_reduce(Tensor(totals, {2}, DType::F64), ReduceOp::Sum);
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
  device_.dp->all_gather(shard(params), params);
  // Every rank's matmuls read the whole bf16 copy: gathered as AdamW rounded it, in half the bytes.
  if (!matmul_copy.empty()) device_.dp->all_gather(shard(matmul_copy), matmul_copy);
}

}  // namespace t6
