#include "train_state/train_checkpointer.h"

#include <cstring>

#include "core/log.h"

namespace t6 {

TrainCheckpointer::TrainCheckpointer(std::filesystem::path checkpoints_dir, int keep_last, ProcessGrid& grid)
    : grid_(grid),
      nonce_(broadcast_string(grid.world(), grid.world_rank() == 0 ? checkpoint::make_save_nonce() : "")),
      store_(std::move(checkpoints_dir), keep_last, nonce_) {}

std::optional<checkpoint::ResumePoint> TrainCheckpointer::find_resume_point(bool strict) {
  // Rank 0 picks the checkpoint (its warnings printed once); the others read the same manifest.
  // A failure there is sent to every rank (after kFailureMark) so that all of them throw it.
  static constexpr char kFailureMark = '\1';
  std::string chosen;
  if (grid_.world_rank() == 0) {
    try {
      if (std::filesystem::is_directory(dir())) checkpoint::recover_interrupted_saves(dir());
      std::optional<checkpoint::ResumePoint> point;
      if (strict) {
        point = checkpoint::resolve_latest(dir(), checkpoint::ChecksumCheck::verify, check_training_checkpoint);
      } else {
        point = checkpoint::resolve_for_auto_resume(dir(), checkpoint::ChecksumCheck::verify, check_training_checkpoint);
      }
      if (point) {
        for (const std::string& warning : point->warnings) log_info("warning: ", warning);
        for (const auto& moved : checkpoint::set_aside_newer_than(dir(), point->manifest.step, nonce_))
          log_info("warning: set aside ", moved.string(), ", newer than the checkpoint resumed from");
        chosen = point->dir.string();
      }
    } catch (const Error& error) {
      chosen = kFailureMark + std::string(error.what());
    }
  }
  chosen = broadcast_string(grid_.world(), chosen);
  if (!chosen.empty() && chosen[0] == kFailureMark) fail(str("cannot resume: ", chosen.substr(1)));
  if (chosen.empty()) return std::nullopt;
  return checkpoint::ResumePoint{chosen, checkpoint::read_manifest(std::filesystem::path(chosen) / "manifest.json"), {}};
}

void TrainCheckpointer::throw_if_any_rank_failed(const std::string& failure, int64_t step) {
  int32_t failed_rank = failure.empty() ? 0 : grid_.world_rank() + 1;  // the highest failing rank, + 1
  grid_.world().all_reduce(Tensor(&failed_rank, {1}, DType::I32), ReduceOp::Max);
  if (failed_rank == 0) return;
  if (grid_.world_rank() == 0) store_.abort_save(step);
  grid_.world().barrier();  // the staging directory is gone before any rank ends the job
  const std::string outcome = str("the save of step ", step, " is abandoned and its staging directory removed; the "
                                  "earlier checkpoints are intact");
  if (!failure.empty()) fail(str(failure, " (", outcome, ")"));
  fail(str("rank ", failed_rank - 1, " could not write its part of the checkpoint (", outcome, ")"));
}

std::filesystem::path TrainCheckpointer::save(const checkpoint::SaveInfo& info, const ModelWeights& weights,
                                              const OptimizerShard& optimizer, bool zero1) {
  std::string failure;
  if (grid_.world_rank() == 0) {
    try {
      store_.begin_save(info.step);
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  throw_if_any_rank_failed(failure, info.step);
  try {
    checkpoint::ShardFileWriter writer(store_.staging_dir(info.step) / shard_file_name(grid_.tp_rank(), grid_.dp_rank()),
                                       store_.save_id(info.step));
    write_rank_tensors(writer, weights, optimizer, shard_range(weights, grid_.dp_rank(), grid_.dp_size(), zero1));
    writer.finish();
  } catch (const Error& error) {
    failure = error.what();
  }
  throw_if_any_rank_failed(failure, info.step);
  std::string committed;
  if (grid_.world_rank() == 0) {
    try {
      committed = store_.commit_save(info).string();
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  throw_if_any_rank_failed(failure, info.step);
  return broadcast_string(grid_.world(), committed);
}

TrainState load_training_checkpoint(const checkpoint::ResumePoint& point, const RunConfig& config,
                                    const TrainState& run_state, const std::vector<std::string>& allowed_changes,
                                    ModelWeights& weights, const OptimizerShard& optimizer) {
  check_same_model(point.manifest, point.dir, config.model);
  check_resume_keeps_meaning(point.manifest, point.dir, config.to_json(), run_state, allowed_changes);
  const TrainState saved = training_state_of(point.manifest, point.dir);
  checkpoint::CheckpointReader reader(point.dir, point.manifest);
  read_rank_tensors(reader, weights, optimizer);
  return saved;
}

}  // namespace t6
