// The optimizer step of a TP × DP run: reduce the gradients (TP partial sums of replicated weights,
// DP mean), take the global norm, clip, and apply AdamW, either on every DP rank (plain DP) or on
// this rank's 1/DP shard of the flat buffer followed by an all-gather of the weights (ZeRO-1).
#pragma once
#include <memory>

#include "model/model_weights.h"
#include "parallel/communicator.h"
#include "train/adamw.h"

namespace t6 {

// The flat range [begin, end) of a rank's local parameter buffer whose AdamW state it holds: all of
// it without ZeRO-1 (or with one DP rank), else chunk dp_rank of the buffer padded to dp_size chunks.
// Shared by the trainer and the offline reshard, so both lay the state out the same way.
Range optimizer_state_range(const ModelWeights& weights, int dp_rank, int dp_size, bool zero1);

class DistributedOptimizer {
 public:
  // tp, dp may be null (size 1). With zero1 the weights must be padded to a multiple of dp size.
  DistributedOptimizer(ModelWeights& weights, const AdamWSettings& settings, Communicator* tp, Communicator* dp, bool zero1);

  // Reduces the accumulated gradients (TP partial sums, DP mean) and writes this rank's share of
  // their squared norm and of their count of non-finite elements into local_statistics (F64 (2), on
  // the weights' device; grad_statistics_into), without waiting for the device: the step reads both
  // with the loss, in its one synchronisation.
  void reduce_gradients(Tensor local_statistics);
  struct GlobalNorm {
    double norm;        // a NaN or inf anywhere in the world makes it non-finite everywhere
    double non_finite;  // the gradient elements that are NaN or ±inf, counted like the norm
  };
  // Both from this rank's shares, read on the host: the same on every rank (one all-reduce of the
  // pair over DP with ZeRO-1, one over TP).
  GlobalNorm global_norm(double local_square_sum, double local_non_finite);
  // After reduce_gradients: clips to max_norm (<= 0: no clipping) and updates the weights. Refuses
  // a non-finite norm, which must skip the step instead (the clip factor min(1, c / NaN) is 1 and
  // c / inf gives 0, and inf · 0 is NaN: either way the update would poison weights and moments).
  void apply(float lr, double max_norm, double grad_norm);

  // The flat range of the local parameter buffer whose AdamW state this rank holds.
  int64_t state_begin() const { return state_.begin; }
  int64_t state_end() const { return state_.end; }
  bool zero1() const { return zero1_; }
  AdamW& adamw() { return adamw_; }
  const AdamW& adamw() const { return adamw_; }

 private:
  void reduce_partial_gradients_over_tp();
  void average_gradients_over_dp();

  ModelWeights& weights_;
  Communicator *tp_, *dp_;
  bool zero1_;
  Range state_;
  AdamW adamw_;
};

}  // namespace t6
