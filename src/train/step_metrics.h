// What one training step cost, as logged every step (the log line and metrics.jsonl):
//   step_s         wall time of the step, the maximum over ranks
//   data_s         reading this rank's slice of the global batch
//   fwd_bwd_s      forward and backward of all micro-batches, less the collectives inside them
//   optimizer_s    clip and AdamW, less the collectives inside
//                  (these three: the maximum over ranks)
//   comm_s         the rest of step_s: time in collectives (TP all-reduces of activations and
//                  gradients, DP gradient averaging, grad-norm sums, ZeRO-1 gathers) that the
//                  slowest rank's compute did not hide; on one rank exactly its time in them.
//                  So data_s + fwd_bwd_s + comm_s + optimizer_s = step_s.
//   tokens_per_s   global batch tokens / step_s
//   mfu            model FLOP utilisation: (6 N + 12 L H D T) FLOPs per token (docs/MODEL.md 5) x
//                  tokens_per_s / the peak of all ranks (log.peak_flops per rank, or the SGEMM
//                  rate measured at start-up)
//   peak_rss_mib   the largest host resident set of any rank so far, MiB
//   skipped_steps  steps of the run skipped so far (kept across resumes) because their gradient
//                  was not finite
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "parallel/communicator.h"

namespace t6 {

// One rank's split of its step, in seconds; the phases add up to total.
struct StepTimes {
  double data = 0, forward_backward = 0, communication = 0, optimizer = 0, total = 0;
};

struct StepCost {
  StepTimes times;  // as listed above
  double peak_rss_mib = 0;
  double tokens_per_s = 0, mfu = 0;
  // The peak was measured while the machine was busier than its cores (other jobs), so it is low
  // and the MFU high; the log line and the record say so.
  bool peak_measured_under_load = false;
};

// Collective over world: the times as listed above, the peak RSS of the largest rank, then the
// throughput of `tokens` tokens at `flops_per_token` against `peak_flops` (all ranks together).
StepCost reduce_step_cost(Communicator& world, const StepTimes& local, int64_t tokens, double flops_per_token,
                          double peak_flops);

// The fields above as metrics.jsonl keys, added to `record`.
void add_step_cost(nlohmann::json& record, const StepCost& cost);

// "2009 tok/s | MFU 3.1% | 1019 ms (data 1, fwd+bwd 900, comm 50, optimizer 68) | peak RSS 512 MiB"
std::string format_step_cost(const StepCost& cost);

}  // namespace t6
