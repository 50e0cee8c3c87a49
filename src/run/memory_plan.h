// The memory one rank of a training run allocates, by what it is for, from the config and the
// world size alone: nothing is allocated and no rank is started. On the CPU backend it is host
// memory, on the CUDA backend the rank's device arenas. The trainer's start-up checks and memory
// line use it, and so can a plan printed before a launch (`t6_pretrain --plan`).
#pragma once
#include <string>

#include "core/dtype.h"
#include "train/run_config.h"

namespace t6 {

// Bytes (as double: a plan of an absurd config must not overflow). The largest over the TP ranks,
// whose slices of a weight may differ by a row.
struct RankMemory {
  double weights = 0;      // fp32 parameters, padded to a multiple of the DP size with ZeRO-1; on the
                           // CUDA backend with their bf16 copy beside them (ModelWeights::matmul_param)
  double gradients = 0;    // as many
  double optimizer = 0;    // AdamW's two moments: this rank's shard with ZeRO-1
  double activations = 0;  // the model's arena, layer scratch included (evaluation uses it too); on the
                           // CUDA backend its matmul inputs are bf16 (ModelWeights::matmul_dtype)
  double scratch = 0;      // the part of activations that layers share within one call
  double batches = 0;      // this rank's inputs and targets of a global batch (validation reads into them)
  double prefetch = 0;     // the next batch, read ahead while a step computes (data.prefetch)
  double data = 0;         // the token loader: its window and the chunk caches of the shards it may keep open
                           // (data.max_open_shards, or the corpus' shard count where that is smaller)

  double total() const;
  // "1.23 GiB (weights 12.7 MiB, gradients …, …; activations include … of layer scratch)".
  std::string describe() const;
};

// What one rank of a run of `world_size` ranks (parallel.tp × DP) allocates on the CPU backend, or
// in its device arenas on the CUDA backend (Device::CUDA: the batch on the device, nothing read
// ahead there, the loader's data on the host).
RankMemory plan_rank_memory(const RunConfig& config, int world_size, Device device = Device::CPU);

// Throws one error when `ranks_on_node` ranks of `memory` exceed `machine_bytes`: how much a rank
// needs, by category, and the config keys of the largest category, the ones to lower.
void check_rank_memory_fits(const RankMemory& memory, double machine_bytes, int ranks_on_node);

}  // namespace t6
