// What a training checkpoint holds and how one rank's part of it is written and read
// (DESIGN.md "Checkpoints"). Tensors: `param/<name>`, `adam_m/<name>`, `adam_v/<name>` for every
// parameter of the table, by global shape. Every rank writes one shard file holding a disjoint part
// of its TP slice's local flat buffer (shard_range): with ZeRO-1 the AdamW range it owns, without it
// chunk dp_rank of the buffer, so the DP replicas share the writing. Of that part it writes the
// pieces of split weights, and of replicated weights only on TP rank 0. Loading reads a rank's
// slices from whatever layout saved them and refuses non-finite values, naming the tensor.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_store.h"
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
  std::string corpus_path;        // data.path of the run
  std::string corpus_index_hash;  // XXH3-128 of its index.json: which corpus, wherever it lies
  // Non-finite steps skipped: in the whole run, and in a row up to `step` (train.max_skipped_steps
  // counts those across a resume). Checkpoints written before these existed read as 0.
  int64_t skipped_steps = 0;
  int64_t skipped_in_a_row = 0;
};
nlohmann::json to_json(const TrainState& state);
TrainState train_state_from_json(const nlohmann::json& json, const std::string& source);
// The manifest's training state, refused (naming the manifest and the value) when it holds what no
// save writes: a step other than the manifest's, AdamW or skipped-step counts outside [0, step], a
// negative decay horizon or elapsed time.
TrainState training_state_of(const checkpoint::Manifest& manifest, const std::filesystem::path& dir);

// The check resume and auto-resume apply beyond the files (checkpoint::CheckpointCheck): the model
// config and the training state read and make sense. Throws naming the manifest.
void check_training_checkpoint(const checkpoint::ResumePoint& point);

// One rank's optimizer state: AdamW moments of the local flat range [state_begin, state_end).
struct OptimizerShard {
  Tensor first_moment, second_moment;
  int64_t state_begin = 0, state_end = 0;
};

// Every tensor a checkpoint of this model holds (global shapes, fp32).
std::vector<checkpoint::TensorInfo> train_checkpoint_tensors(const ModelConfig& config);

// The shard file name of a rank ("shard_tp1_dp0.h5").
std::string shard_file_name(int tp_rank, int dp_rank);

// The flat range of its local buffer that a rank writes: its ZeRO-1 state range, or without ZeRO-1
// chunk dp_rank of dp_size (the replicas hold the same state; each writes a disjoint part).
Range shard_range(const ModelWeights& weights, int dp_rank, int dp_size, bool zero1);

// Writes the pieces of weights and moments in `range` (inside the optimizer's state range).
void write_rank_tensors(checkpoint::ShardFileWriter& writer, const ModelWeights& weights,
                        const OptimizerShard& optimizer, Range range);

// Fills this rank's weights and moments from a checkpoint of any layout. A NaN or infinity is an
// error naming the checkpoint, the tensor and the element.
void read_rank_tensors(checkpoint::CheckpointReader& reader, ModelWeights& weights, const OptimizerShard& optimizer);

// The corpus a run reads, as TrainState records it: path and XXH3-128 of its index.json.
void record_corpus(TrainState& state, const std::string& corpus_dir);

// The keys --allow-change accepts: what resuming with another value would change the meaning of.
const std::vector<std::string>& resume_sensitive_keys();  // train.seed, ..., data.corpus

// Throws naming the checkpoint and every differing key of resume_sensitive_keys() that is not in
// `allowed`: another seed, global batch size, sequence length or corpus than the checkpoint's. A
// checkpoint of step 0 with fresh AdamW state (an import) passes whatever differs.
void check_resume_keeps_meaning(const checkpoint::Manifest& manifest, const std::filesystem::path& dir,
                                const nlohmann::json& run_config, const TrainState& run_state,
                                const std::vector<std::string>& allowed);

// The model config a checkpoint was saved with (its manifest's "model" section).
ModelConfig model_config_of(const checkpoint::Manifest& manifest, const std::filesystem::path& dir);

// Throws naming the checkpoint directory and the differing model keys when `config` is another model.
void check_same_model(const checkpoint::Manifest& manifest, const std::filesystem::path& dir,
                      const ModelConfig& config);

}  // namespace t6
