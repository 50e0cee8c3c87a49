#include "train_state/train_checkpointer.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "checkpoint/file_checksum.h"
#include "core/log.h"
#include "parallel/rank_failure.h"

namespace t6 {

namespace {

namespace fs = std::filesystem;

// The shard files of the newest step directory: the checkpoint a resume takes unless it is damaged
// (then the checks name what is wrong and fall back).
std::vector<fs::path> newest_shard_files(const fs::path& checkpoints_dir) {
  std::error_code ignored;
  if (!fs::is_directory(checkpoints_dir, ignored)) return {};
  const std::vector<fs::path> dirs = checkpoint::list_step_dirs(checkpoints_dir);
  if (dirs.empty()) return {};
  std::vector<fs::path> files;
  try {
    for (const checkpoint::ShardRecord& shard : checkpoint::read_manifest(dirs.back() / "manifest.json").shards)
      files.push_back(dirs.back() / shard.file);
  } catch (const Error&) {
    return {};
  }
  return files;
}

// Every rank digests a share of rank 0's `files` (file i on rank i mod world size), so that a
// resume reads the checkpoint once, in parallel, instead of rank 0 reading all of it while the others
// wait for it (under parallel.timeout_s). Rank 0's checks take these digests; a file missing here
// (unreadable, or of an older checkpoint it falls back to) it reads itself.
checkpoint::KnownDigests digest_in_parallel(const std::vector<fs::path>& files_on_rank0, Communicator& world) {
  std::string listed;
  for (const fs::path& file : files_on_rank0) listed += file.string() + '\n';
  std::istringstream lines(broadcast_string(world, listed));
  std::vector<fs::path> files;
  for (std::string line; std::getline(lines, line);) files.push_back(line);
  constexpr size_t kWords = 4;  // taken, bytes, high and low 64 bits of the XXH3-128
  std::vector<uint64_t> table(files.size() * kWords, 0);
  for (size_t index = size_t(world.rank()); index < files.size(); index += size_t(world.size())) {
    try {
      const checkpoint::FileDigest digest = checkpoint::digest_file(files[index]);
      uint64_t* entry = table.data() + index * kWords;
      entry[0] = 1;
      entry[1] = digest.bytes;
      entry[2] = std::stoull(digest.xxh3_128.substr(0, 16), nullptr, 16);
      entry[3] = std::stoull(digest.xxh3_128.substr(16, 16), nullptr, 16);
    } catch (const Error&) {
      // left to rank 0's check, which names the file
    }
  }
  if (!table.empty()) world.all_reduce(Tensor(table.data(), {int64_t(table.size())}, DType::U64), ReduceOp::Max);
  checkpoint::KnownDigests known;
  for (size_t index = 0; index < files.size(); ++index) {
    const uint64_t* entry = table.data() + index * kWords;
    if (entry[0] == 0) continue;
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, entry[2], entry[3]);
    known[files[index].lexically_normal()] = {entry[1], hex};
  }
  return known;
}

}  // namespace

TrainCheckpointer::TrainCheckpointer(std::filesystem::path checkpoints_dir, int keep_last, ProcessGrid& grid)
    : grid_(grid),
      nonce_(broadcast_string(grid.world(), grid.world_rank() == 0 ? checkpoint::make_save_nonce() : "")),
      store_(std::move(checkpoints_dir), keep_last, nonce_) {}

std::optional<checkpoint::ResumePoint> TrainCheckpointer::find_resume_point(bool strict) {
  // Rank 0 picks the checkpoint (its warnings printed once), from checksums all ranks took of the
  // newest one; the others read the same manifest.
  std::string chosen, failure;
  std::vector<fs::path> newest_files;
  if (grid_.world_rank() == 0) {
    try {
      if (std::filesystem::is_directory(dir())) checkpoint::recover_interrupted_saves(dir());
      newest_files = newest_shard_files(dir());
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  const checkpoint::KnownDigests known = digest_in_parallel(newest_files, grid_.world());
  if (grid_.world_rank() == 0 && failure.empty()) {
    try {
      std::optional<checkpoint::ResumePoint> point;
      if (strict) {
        point = checkpoint::resolve_latest(dir(), checkpoint::ChecksumCheck::verify, check_training_checkpoint, &known);
      } else {
        point = checkpoint::resolve_for_auto_resume(dir(), checkpoint::ChecksumCheck::verify, check_training_checkpoint,
                                                    &known);
      }
      if (point) {
        for (const std::string& warning : point->warnings) log_info("warning: ", warning);
        for (const auto& moved : checkpoint::set_aside_newer_than(dir(), point->manifest.step, nonce_))
          log_info("warning: set aside ", moved.string(), ", newer than the checkpoint resumed from");
        chosen = point->dir.string();
      }
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  if (!failure.empty()) failure = str("cannot resume: ", failure);
  throw_if_any_rank_failed(grid_.world(), failure);
  chosen = broadcast_string(grid_.world(), chosen);
  if (chosen.empty()) return std::nullopt;
  return checkpoint::ResumePoint{chosen, checkpoint::read_manifest(std::filesystem::path(chosen) / "manifest.json"), {}};
}

void TrainCheckpointer::end_save_if_any_rank_failed(const std::string& failure, int64_t step) {
  const AgreedFailure agreed = agree_on_failure(grid_.world(), failure);
  if (!agreed) return;
  if (grid_.world_rank() == 0) store_.abort_save(step);
  grid_.world().barrier();  // the staging directory is gone before any rank ends the job
  agreed.raise(str(" (the save of step ", step, " is abandoned and its staging directory removed; the earlier "
                   "checkpoints are intact)"));
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
  end_save_if_any_rank_failed(failure, info.step);
  try {
    checkpoint::ShardFileWriter writer(store_.staging_dir(info.step) / shard_file_name(grid_.tp_rank(), grid_.dp_rank()),
                                       store_.save_id(info.step));
    write_rank_tensors(writer, weights, optimizer, shard_range(weights, grid_.dp_rank(), grid_.dp_size(), zero1));
    writer.finish();
  } catch (const Error& error) {
    failure = error.what();
  }
  end_save_if_any_rank_failed(failure, info.step);
  std::string committed;
  if (grid_.world_rank() == 0) {
    try {
      committed = store_.commit_save(info).string();
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  end_save_if_any_rank_failed(failure, info.step);
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
