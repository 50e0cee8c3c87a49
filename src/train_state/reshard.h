// Offline resharding of a training checkpoint (`t6_ckpt reshard`): one process rewrites a checkpoint
// saved at any TP × DP layout (with or without ZeRO-1) into the shard files another layout would
// write, rank by rank, through the same reader and writer the trainer uses, so loading the result
// gives exactly what loading the source at the new layout gives (resharding on load).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>

#include "checkpoint/checkpoint_store.h"

namespace t6::checkpoint {

// A step directory (holding manifest.json) as is, or a checkpoints directory by its `latest`.
ResumePoint open_checkpoint_path(const std::filesystem::path& path, ChecksumCheck checksums);

// Called after each shard file is written: (files done, files in all).
using ReshardProgress = std::function<void(int64_t done, int64_t total)>;

// Writes `source` at `layout` as a new checkpoint of the same step under `destination_checkpoints`
// (a checkpoints directory, created if missing; its `latest` then names the new step directory).
// Refuses a destination holding this step or a newer one; a failure leaves nothing behind
// (write_checkpoint_offline). Returns the new step directory.
std::filesystem::path reshard_checkpoint(const ResumePoint& source, const std::filesystem::path& destination_checkpoints,
                                         const CheckpointLayout& layout, const ReshardProgress& progress = {});

}  // namespace t6::checkpoint
