// What a training checkpoint holds and how one rank's part of it is written and read
// (DESIGN.md "Checkpoints"). Tensors: `param/<name>`, `adam_m/<name>`, `adam_v/<name>` for every
// parameter of the table, by global shape. A rank owns part of its local flat buffer: all of it on DP
// replica 0 without ZeRO-1 (other replicas hold copies and write nothing), its ZeRO-1 range
// [state_begin, state_end) with ZeRO-1; of that part it writes the pieces of split weights, and of
// replicated weights only on TP rank 0. Loading reads a rank's slices from whatever layout saved them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/manifest.h"
#include "checkpoint/shard_file.h"
#include "model/model_weights.h"

namespace t6 {

// The state beside the tensors, kept in the manifest's `state`.
struct TrainState {
  int64_t step = 0;            // optimizer steps completed
  int64_t adam_steps = 0;      // AdamW bias-correction count
  int64_t lr_decay_steps = 0;  // the run's effective decay horizon (DESIGN.md: kept on resume)
  double elapsed_seconds = 0;
};
nlohmann::json to_json(const TrainState& state);
TrainState train_state_from_json(const nlohmann::json& json, const std::string& source);

// One rank's optimizer state: AdamW moments of the local flat range [state_begin, state_end).
struct OptimizerShard {
  Tensor first_moment, second_moment;
  int64_t state_begin = 0, state_end = 0;
};

// Every tensor a checkpoint of this model holds (global shapes, fp32).
std::vector<checkpoint::TensorInfo> train_checkpoint_tensors(const ModelConfig& config);

// The shard file name of a rank ("shard_tp1_dp0.h5").
std::string shard_file_name(int tp_rank, int dp_rank);

// Whether a rank writes a shard at all: with ZeRO-1 every rank, else DP replica 0.
bool rank_writes_shard(int dp_rank, bool zero1);

// Writes this rank's owned pieces of weights and moments.
void write_rank_tensors(checkpoint::ShardFileWriter& writer, const ModelWeights& weights,
                        const OptimizerShard& optimizer);

// Fills this rank's weights and moments from a checkpoint of any layout.
void read_rank_tensors(checkpoint::CheckpointReader& reader, ModelWeights& weights, const OptimizerShard& optimizer);

// The model config a checkpoint was saved with (its manifest's "model" section).
ModelConfig model_config_of(const checkpoint::Manifest& manifest, const std::filesystem::path& dir);

// Throws naming the checkpoint directory and the differing model keys when `config` is another model.
void check_same_model(const checkpoint::Manifest& manifest, const std::filesystem::path& dir,
                      const ModelConfig& config);

}  // namespace t6
