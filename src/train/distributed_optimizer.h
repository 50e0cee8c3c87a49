// The optimizer step of a TP × DP run: reduce the gradients (TP partial sums of replicated weights,
// DP mean), take the global norm, clip, and apply AdamW, either on every DP rank (plain DP) or on
// this rank's 1/DP shard of the flat buffer followed by an all-gather of the weights (ZeRO-1).
// The flat gradient buffer is reduced over DP in buckets of whole parameters; with overlap, each
// bucket is reduced as soon as the backward has made its gradients final (the model's
// gradients-ready callback), while the backward goes on down the layers. Plain DP all-reduces a
// bucket; ZeRO-1 reduces each piece of it to the DP rank whose shard holds that piece (one reduce
// per shard the bucket meets), so that each rank ends with the mean of its shard, as a
// reduce-scatter of the whole buffer would give (a ring passes each piece on once, as in a ring
// reduce-scatter, so a rank sends as many bytes).
#pragma once
#include <memory>
#include <vector>

#include "model/model_weights.h"
#include "parallel/communicator.h"
#include "train/adamw.h"

namespace t6 {

// The flat range [begin, end) of a rank's local parameter buffer whose AdamW state it holds: all of
// it without ZeRO-1 (or with one DP rank), else chunk dp_rank of the buffer padded to dp_size chunks.
// Shared by the trainer and the offline reshard, so both lay the state out the same way.
Range optimizer_state_range(const ModelWeights& weights, int dp_rank, int dp_size, bool zero1);

// A DP bucket closes once it holds this many elements (parallel.bucket_mib of fp32, at least one;
// 64 MiB by default): large enough for full bandwidth, small enough that the first buckets overlap
// much of the backward and that a staging communicator's buffer stays bounded.
int64_t dp_bucket_elements(double bucket_mib);
constexpr int64_t kDpBucketElements = int64_t(1) << 24;  // of the default 64 MiB

// The TP and DP groups of a rank; either may be null (size 1).
struct ReductionGroups {
  Communicator *tp = nullptr, *dp = nullptr;
};

class DistributedOptimizer {
 public:
  // `device` carries the gradients and weights (on the weights' device: NCCL, or MPI staging
  // device buffers), `host` the scalars the host reads (the norm); both are the same groups. With
  // zero1 the weights must be padded to a multiple of dp size. bucket_elements: see
  // dp_bucket_elements (tests make it small to get several buckets of a tiny model).
  DistributedOptimizer(ModelWeights& weights, const AdamWSettings& settings, ReductionGroups device,
                       ReductionGroups host, bool zero1, int64_t bucket_elements = kDpBucketElements);

  // Before the backward that makes the step's gradients final (the last micro-batch's): from then
  // on gradients_final_from() starts the reduction of what it makes final.
  void begin_overlapped_reduction();
  // The model's gradients-ready callback: every gradient from parameter `first_param` on is final.
  // Ignored outside begin_overlapped_reduction() .. reduce_gradients().
  void gradients_final_from(int64_t first_param);
  // Reduces the gradients not reduced yet (all of them without overlap), lets the weights' device
  // wait for the buckets, and writes this rank's share of their squared norm and of their count of
  // non-finite elements into local_statistics (F64 (2), on the weights' device;
  // grad_statistics_into), without waiting for the device: the step reads both with the loss, in
  // its one synchronisation.
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
  // The DP buckets in the order the backward makes them final (the last parameters first).
  struct Bucket {
    int64_t first_param;  // its first parameter: final when the gradients are final from here on
    Range elements;       // of the padded flat buffer
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  void reduce_final_gradients(int64_t first_param);
  void start_bucket(const Bucket& bucket);

  ModelWeights& weights_;
  ReductionGroups device_, host_;
  bool zero1_;
  Range state_;
  AdamW adamw_;
  std::vector<Bucket> buckets_;  // empty with one DP rank
  bool overlapping_ = false;
  // This step's progress: parameters from unreduced_end_ on are TP-reduced, buckets before
  // next_bucket_ started over DP.
  int64_t unreduced_end_ = 0;
  size_t next_bucket_ = 0;
};

}  // namespace t6
