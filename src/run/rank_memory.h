// The memory of one training rank by kind of buffer, and the one line that reports it. The trainer
// fills it from its live buffers for the start-up table; the plan (run/training_plan.h) fills it
// from the same planning code before anything is allocated, so the two agree to the byte on the CPU.
#pragma once
#include <cstdint>
#include <string>

namespace t6 {

struct RankMemory {
  int64_t weights = 0;      // parameters (CPU: fp32 flat buffer; CUDA: bf16 copy + fp32 master)
  int64_t gradients = 0;    // fp32 flat buffer
  int64_t optimizer = 0;    // AdamW's two moments over this rank's state range (ZeRO-1: its shard)
  int64_t activations = 0;  // the activation arena less the workspace: what backward reads back
  int64_t workspace = 0;    // the arena's scratch shared by the layers within one call
  int64_t total() const { return weights + gradients + optimizer + activations + workspace; }
};

// "weights 44.52 MiB, gradients 44.52 MiB, AdamW 89.04 MiB, activations 113.32 MiB, workspace
// 20.00 MiB = 311.39 MiB (326516736 bytes) per rank" (two decimals, GiB from 1 GiB on).
std::string format_rank_memory(const RankMemory& memory);

}  // namespace t6
