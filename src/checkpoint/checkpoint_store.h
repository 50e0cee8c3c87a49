// The checkpoint directory protocol of a run (DESIGN.md "Checkpoints"):
//   checkpoints/step_00012000/{manifest.json, shard_*.h5}   a complete checkpoint
//   checkpoints/step_00012000.tmp-<nonce>/                  a save in progress (or a crashed one)
//   checkpoints/latest                                      a file holding "step_00012000"
//   checkpoints/set_aside/step_00014000-<nonce>/            a newer checkpoint of an abandoned branch
// A save is two-phase so the caller can put barriers between the phases:
//   rank 0: begin_save(step) → barrier → every rank: ShardFileWriter(staging_dir(step)/..., save_id(step)),
//   finish() → barrier → rank 0: commit_save(info) (or abort_save(step) when a rank failed).
// commit_save writes the manifest last and commits by renaming the staging directory to step_N;
// then it replaces `latest` atomically and prunes old checkpoints (each renamed away before it is
// removed). A crash at any point (save_faults.h names them) leaves the newest committed checkpoint
// in place: recover_interrupted_saves puts back a step directory set aside for a re-save of its
// step, and resume takes a step directory newer than `latest` (committed, `latest` not yet
// updated). Resume goes through resolve_latest (explicit --resume: any problem is an error) or
// resolve_for_auto_resume (falls back to the newest checkpoint that verifies).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_verify.h"
#include "checkpoint/manifest.h"

namespace t6::checkpoint {

std::string step_dir_name(int64_t step);  // "step_00012000"
// The step of a complete checkpoint's directory name ("step_<digits>" exactly); nullopt otherwise.
std::optional<int64_t> parse_step_dir_name(const std::string& name);
// A random token for staging directory names; rank 0 makes one per job and broadcasts it.
std::string make_save_nonce();

struct SaveInfo {
  int64_t step = 0;
  int64_t tokens_seen = 0;
  CheckpointLayout layout;
  nlohmann::json config = nlohmann::json::object();
  nlohmann::json state = nlohmann::json::object();  // RNG, data loader position, ...
  // Every tensor the checkpoint must hold. Commit fails when the shards miss one or disagree on its
  // shape or dtype; empty means "whatever the shards hold" (tools and tests).
  std::vector<TensorInfo> tensors;
};

class CheckpointStore {
 public:
  // `keep_last`: how many checkpoints to keep (0 keeps all). `save_nonce` must be the same on every
  // rank of the job and differ between jobs, so a straggler of a killed job never writes into this
  // job's staging directory.
  CheckpointStore(std::filesystem::path checkpoints_dir, int keep_last, std::string save_nonce);

  const std::filesystem::path& dir() const { return checkpoints_dir_; }

  // Every rank: where the shard files of the save of `step` go, and the id they carry. Touch nothing.
  std::filesystem::path staging_dir(int64_t step) const;
  std::string save_id(int64_t step) const;

  // Rank 0, before the other ranks write: removes the staging directories of crashed saves and
  // creates a fresh staging_dir(step).
  std::filesystem::path begin_save(int64_t step) const;

  // Rank 0, after every writer has finished: checks the shards tile every tensor, writes
  // manifest.json, renames the staging directory to step_NNNNNNNN (replacing an older save of the
  // same step), points `latest` at it and prunes beyond keep_last. Returns the final directory.
  std::filesystem::path commit_save(const SaveInfo& info) const;

  // Rank 0, when a rank failed to write its shard (disk full): removes the staging directory.
  void abort_save(int64_t step) const;

 private:
  std::filesystem::path checkpoints_dir_;
  int keep_last_;
  std::string save_nonce_;
};

// Writes one checkpoint outside a training run (t6_ckpt reshard and import) into a checkpoints
// directory, created if missing: `write_shards` writes the shard files into
// store.staging_dir(info.step), then the save is committed and `latest` names it. Refuses a
// destination that is not a directory or already holds this step or a newer one (its `latest` would
// move back, and resume would still take the newer one). On a failure (a full disk) the staging
// directory is removed, and the destination too when this call created it: nothing partial stays.
std::filesystem::path write_checkpoint_offline(const std::filesystem::path& checkpoints_dir, const SaveInfo& info,
                                               const std::function<void(const CheckpointStore& store)>& write_shards);

struct ResumePoint {
  std::filesystem::path dir;          // the step directory
  Manifest manifest;
  std::vector<std::string> warnings;  // why newer checkpoints were skipped (auto-resume only)
};

// Finishes what crashed saves left: a step directory set aside for a re-save of its step goes back
// when the re-save never committed (else it is removed), staging and half-pruned directories go.
void recover_interrupted_saves(const std::filesystem::path& checkpoints_dir);

// After resuming from `step` when newer step directories exist (a fall-back past damaged ones, or an
// abandoned branch): moves them to checkpoints/set_aside/<name>-<nonce>, where neither resume nor
// pruning looks. Returns where they went.
std::vector<std::filesystem::path> set_aside_newer_than(const std::filesystem::path& checkpoints_dir, int64_t step,
                                                        const std::string& nonce);

// What a checkpoint's manifest means to its caller (a training state, a model config), checked
// beyond the storage: throws t6::Error naming what is wrong. A checkpoint it refuses counts as
// damaged, so auto-resume falls back past it as past a damaged file.
using CheckpointCheck = std::function<void(const ResumePoint& point)>;

// One checkpoint directory, checked: manifest parses, every shard present with its size (and
// checksum when asked, not read again for a file `known` holds), every tensor tiled, and `check`
// passes. Throws t6::Error naming the files at fault.
ResumePoint open_checkpoint(const std::filesystem::path& checkpoint_dir, ChecksumCheck checksums,
                            const CheckpointCheck& check = {}, const KnownDigests* known = nullptr);

// The checkpoint `latest` names, or a newer step directory (a save that stopped before updating
// `latest`; then with a warning); any problem (no `latest`, a damaged target) is an error.
ResumePoint resolve_latest(const std::filesystem::path& checkpoints_dir, ChecksumCheck checksums,
                           const CheckpointCheck& check = {}, const KnownDigests* known = nullptr);

// For auto-resume: the newest step directory that verifies, with warnings saying what was skipped
// (and a garbage `latest`, shown escaped). nullopt when there is no checkpoint at all (a fresh run);
// an error when step directories exist but none verifies.
std::optional<ResumePoint> resolve_for_auto_resume(const std::filesystem::path& checkpoints_dir,
                                                   ChecksumCheck checksums, const CheckpointCheck& check = {},
                                                   const KnownDigests* known = nullptr);

// The step directories (complete or not) under checkpoints_dir, oldest first.
std::vector<std::filesystem::path> list_step_dirs(const std::filesystem::path& checkpoints_dir);

}  // namespace t6::checkpoint
