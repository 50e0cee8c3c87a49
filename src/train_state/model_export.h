// Training checkpoints to and from safetensors state dicts under the reference names (docs/MODEL.md
// 2.1): export gathers the full model (tp = 1) from a checkpoint of any layout through the reader;
// import writes a step-0 checkpoint (TP1 × DP1, AdamW moments zero) from a reference state dict or
// a fixture file (tensors "param.<name>").
#pragma once
#include <filesystem>
#include <string>

#include "checkpoint/checkpoint_store.h"
#include "core/dtype.h"
#include "train/run_config.h"

namespace t6::checkpoint {

// Writes the weights of `point` to `out` (F32 or BF16) with both tied keys and the config metadata.
void export_safetensors(const ResumePoint& point, const std::string& out, DType dtype);

// Writes a step-0 checkpoint of the weights in `in` under `destination_checkpoints` (created if
// missing, `latest` names it) and returns its directory. The model config comes from the file's
// metadata, checked against `run_config` when given; the rest of the stored run config is
// `run_config` or the defaults.
std::filesystem::path import_safetensors(const std::string& in, const std::filesystem::path& destination_checkpoints,
                                         const RunConfig* run_config);

}  // namespace t6::checkpoint
