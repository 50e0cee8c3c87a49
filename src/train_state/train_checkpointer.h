// Saving and resuming a training run over all its ranks: the collectives around CheckpointStore
// (DESIGN.md "Checkpoints"). Rank 0 runs the directory protocol; every rank writes its shard
// (train_checkpoint.h says which part). A failure on any rank, such as a full disk, removes the
// save's staging directory and throws on every rank, leaving the earlier checkpoints as they were.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_store.h"
#include "parallel/process_grid.h"
#include "train/run_config.h"
#include "train_state/train_checkpoint.h"

namespace t6 {

class TrainCheckpointer {
 public:
  // Collective over the grid's world (rank 0 makes the job's save nonce).
  TrainCheckpointer(std::filesystem::path checkpoints_dir, int keep_last, ProcessGrid& grid);

  const std::filesystem::path& dir() const { return store_.dir(); }

  // Collective. Rank 0 finishes what crashed saves left, then picks the checkpoint: `strict`
  // (--resume) the one `latest` names (or a newer committed one), every file checked against the
  // manifest's checksums and its training state and model config checked (check_training_checkpoint),
  // else an error naming the file; otherwise (auto-resume) the newest that verifies, warning about each one skipped, and the newer step directories of the abandoned
  // branch are set aside. Every rank gets the same point; nullopt when there is no checkpoint.
  std::optional<checkpoint::ResumePoint> find_resume_point(bool strict);

  // Collective: this rank's part of weights and moments, then rank 0's manifest and commit.
  std::filesystem::path save(const checkpoint::SaveInfo& info, const ModelWeights& weights,
                             const OptimizerShard& optimizer, bool zero1);

 private:
  // Collective: when `failure` is non-empty on any rank, rank 0 removes the staging directory of the
  // save of `step`, then every rank throws the lowest failing rank's error (rank_failure.h).
  void end_save_if_any_rank_failed(const std::string& failure, int64_t step);

  ProcessGrid& grid_;
  std::string nonce_;
  checkpoint::CheckpointStore store_;
};

// Loads this rank's weights and moments from `point` after checking that resuming keeps the run's
// meaning: the same model, and the same seed, batch, sequence length and corpus unless their keys
// are in `allowed_changes`. `run_state` holds the run's corpus (record_corpus). Returns the saved
// state. Errors name the checkpoint and the keys or tensor.
TrainState load_training_checkpoint(const checkpoint::ResumePoint& point, const RunConfig& config,
                                    const TrainState& run_state, const std::vector<std::string>& allowed_changes,
                                    ModelWeights& weights, const OptimizerShard& optimizer);

}  // namespace t6
