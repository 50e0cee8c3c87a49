// t6_pretrain --plan: what a run of a config would be on a world of N ranks, computed without a
// corpus, without starting ranks and without allocating the model: parameter count and layout,
// micro-batches, memory per rank (run/memory_plan.h, what the trainer checks and allocates on the
// CPU backend, and in device arenas on the CUDA backend), FLOPs per token and the bytes each rank
// communicates per step. It runs every check of the trainer that needs no data or hardware
// (parallel.tp against the world and the heads, the batch split), with the same messages.
#pragma once
#include <cstdint>
#include <string>

#include "run/memory_plan.h"
#include "train/run_config.h"

namespace t6 {

// Bytes of GPU memory of the card the plan sizes runs for: an H100 80 GB as nvidia-smi reports it
// (81,559 MiB), less what the CUDA context, cuBLASLt and NCCL take before any arena (2 GiB).
constexpr int64_t kPlanGpuBytes = int64_t(81559) << 20;
constexpr int64_t kPlanGpuReservedBytes = int64_t(2) << 30;
constexpr const char* kPlanGpuName = "NVIDIA H100 80 GB";

// The CUDA backend's device arenas per rank (plan_rank_memory for Device::CUDA): fp32 master
// weights with a bf16 copy beside them (whole on every rank, ZeRO-1 or not), fp32 gradients and
// AdamW state, the activations with bf16 matmul inputs, and the batch.
RankMemory planned_cuda_memory(const RunConfig& config, int64_t world);

struct StepCommunication {
  int64_t tp_bytes = 0;  // payload all-reduced over the TP group per step (activations, partial gradients)
  int64_t dp_bytes = 0;  // payload reduced over the DP group per step (the gradients)
};
// Per rank and optimizer step, for rank 0 (the largest share of heads and of the batch).
StepCommunication planned_communication(const RunConfig& config, int64_t world);

// The whole report t6_pretrain --plan prints. Throws as the trainer would for a world the config
// does not fit.
std::string training_plan_report(const RunConfig& config, int64_t world);

}  // namespace t6
