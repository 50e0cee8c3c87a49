// Model weights in and out of safetensors under the reference names (docs/MODEL.md 2.1): import a
// reference state dict or a fixture file, export one the reference loads with strict=True.
#pragma once
#include <string>

#include "checkpoint/safetensors.h"
#include "model/model_weights.h"

namespace t6 {

// The model config a file describes: its metadata (exports and fixtures carry it), checked against
// `given` when both exist; `given` alone for a file without metadata. Throws naming the file.
ModelConfig config_of_state_dict(const SafetensorsReader& file, const ModelConfig* given);

// Loads this rank's slice of every parameter from `file`, whose names carry `prefix` ("" for a
// reference state dict, "param." for a fixture). The tied weight may appear as
// transformer.wte.weight, lm_head.weight or both (then they must be equal). Missing tensors and
// shape mismatches are errors naming the file and tensor.
void load_state_dict(const SafetensorsReader& file, ModelWeights& weights, const std::string& prefix = "");

// Writes the full model (one rank, tp = 1) with both tied keys and the config as metadata, plus
// `extra_metadata` (an export's "seq_len": the training sequence length).
void save_state_dict(const std::string& path, const ModelWeights& weights, DType dtype,
                     const std::map<std::string, std::string>& extra_metadata = {});

}  // namespace t6
