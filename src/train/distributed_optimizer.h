// The optimizer step of a TP × DP run: reduce the gradients (TP partial sums of replicated weights,
// DP mean), take the global norm, clip, and apply AdamW, either on every DP rank (plain DP) or on
// this rank's 1/DP shard of the flat buffer followed by an all-gather of the weights (ZeRO-1).
#pragma once
#include <memory>

#include "model/model_weights.h"
#include "parallel/communicator.h"
#include "train/adamw.h"

namespace t6 {

class DistributedOptimizer {
 public:
  // tp, dp may be null (size 1). With zero1 the weights must be padded to a multiple of dp size.
  DistributedOptimizer(ModelWeights& weights, const AdamWSettings& settings, Communicator* tp, Communicator* dp, bool zero1);

  // Reduces the accumulated gradients, clips to max_norm (<= 0: no clipping) and updates the
  // weights. Returns the global gradient norm before clipping.
  double step(float lr, double max_norm);

  // The flat range of the local parameter buffer whose AdamW state this rank holds.
  int64_t state_begin() const { return state_begin_; }
  int64_t state_end() const { return state_end_; }
  bool zero1() const { return zero1_; }
  AdamW& adamw() { return adamw_; }

 private:
  void reduce_partial_gradients_over_tp();
  void average_gradients_over_dp();
  double grad_norm_of_state_range();

  ModelWeights& weights_;
  Communicator *tp_, *dp_;
  bool zero1_;
  int64_t state_begin_, state_end_;
  AdamW adamw_;
};

}  // namespace t6
