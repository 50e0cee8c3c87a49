// How one optimizer step's global batch is shared out: DP rank r reads a contiguous run of the
// global batch's sequences (G / DP each, the first G mod DP ranks one more, so that 480 sequences
// run on 64 DP ranks as 32 × 8 + 32 × 7) and splits its share into equal micro-batches.
// train.micro_batch_size = 0 derives each rank's micro-batch: the largest divisor of its share up to
// kDerivedMicroBatchCap. A set micro-batch must divide every share; the error lists those that do.
// Each rank's gradient and loss are weighted by its share (dp_weight), so that the DP average is
// the mean over the whole global batch whatever the split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/run_config.h"

namespace t6 {

// The largest derived micro-batch: the paper configs' 16 sequences of 1024 tokens per forward.
constexpr int64_t kDerivedMicroBatchCap = 16;

struct BatchShare {
  int64_t first_sequence = 0;  // of the global batch
  int64_t sequences = 0;       // this DP rank's share
  int64_t micro_batch = 0;     // sequences per forward/backward
  int64_t micro_steps = 0;     // sequences / micro_batch
  // sequences × DP / global batch: scales this rank's loss and gradients so that the DP mean of
  // the scaled values is the mean over the global batch (exactly 1 when the split is even).
  double dp_weight = 1;
};

// DP rank dp_rank's share of the global batch; throws naming train.global_batch_size or
// train.micro_batch_size (and the values that work) when the batch cannot be split.
BatchShare batch_share(const TrainConfig& train, int64_t dp_rank, int64_t dp_size);

// The micro-batch sizes that divide every DP rank's share, ascending.
std::vector<int64_t> workable_micro_batch_sizes(int64_t global_batch_size, int64_t dp_size);

// "480 × 1024 = 491520 tokens/step; 60 sequences per DP rank in 4 micro-batches of 15" (uneven:
// "DP ranks 0-31: 8 sequences in 1 micro-batch of 8; ranks 32-63: 7 in 1 of 7"), for the start-up
// table and the plan. Throws as batch_share does.
std::string describe_batch_split(const TrainConfig& train, int64_t dp_size);

}  // namespace t6
