// Checkpoints hold host tensors (fp32 master weights and AdamW moments, backend-neutral). On the
// CUDA backend this host copy of the weights and of this rank's moments stands between the
// checkpointer and the device arenas: download() before a save (or a finite check), upload() after
// a resume. On the CPU backend it is the live state itself and both calls do nothing.
#pragma once
#include <memory>

#include "core/arena.h"
#include "model/model_weights.h"
#include "train/adamw.h"
#include "train_state/train_checkpoint.h"

namespace t6 {

class CheckpointStaging {
 public:
  // The AdamW moments cover [state_begin, state_end) of the flat parameter buffer.
  CheckpointStaging(ModelWeights& weights, AdamW& adamw, int64_t state_begin, int64_t state_end);

  ModelWeights& weights() { return host_weights_ ? *host_weights_ : live_weights_; }
  OptimizerShard optimizer_shard() const;

  void download();  // device → host: the whole state (waits for the device)
  void upload();    // host → device (waits for the device)

 private:
  ModelWeights& live_weights_;
  AdamW& live_adamw_;
  int64_t state_begin_, state_end_;
  std::unique_ptr<ModelWeights> host_weights_;  // null on the CPU backend
  Tensor host_m_, host_v_;                      // views of host_moments_; declared before it
  Arena host_moments_;
};

}  // namespace t6
