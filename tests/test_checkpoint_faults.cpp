// The checkpoint store under faults: every kind of damaged file (bit flip, wrong magic, truncation,
// a missing file, damaged HDF5 metadata, a broken or hand-edited manifest, files of two saves mixed) is refused by
// a verifying resume naming the file, and auto-resume falls back to the newest checkpoint that
// verifies; a garbage `latest` is shown escaped; a crash at every point of the save protocol (the
// T6_CKPT_CRASH_AT hook, in a forked child) leaves the newest committed checkpoint loadable and the
// previous one intact; a fall-back sets the newer step directories aside, out of pruning's way; a
// full disk (injected ENOSPC, and a real small tmpfs where mounting is allowed) fails the save with
// one line, leaves no staging directory, and the next save succeeds.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/save_faults.h"
#include "checkpoint/shard_file.h"
#include "common/error_expectations.h"
#include "common/file_damage.h"
#include "common/small_tmpfs.h"
#include "common/test_paths.h"

using namespace t6;
using namespace t6::testing;
using namespace t6::checkpoint;
namespace fs = std::filesystem;

namespace {

const Extents kWeightShape = {256, 64};

// Two shard files (one per TP rank), each holding half of param/w.
void write_shards(const CheckpointStore& store, int64_t step) {
  for (int tp_rank = 0; tp_rank < 2; ++tp_rank) {
    ShardFileWriter writer(store.staging_dir(step) / str("shard_tp", tp_rank, "_dp0.h5"), store.save_id(step));
    TensorRegion rows = TensorRegion::split(kWeightShape, 0, 128 * tp_rank, 128 * (tp_rank + 1));
    HostTensor values({rows.numel()}, DType::F32);
    for (int64_t i = 0; i < rows.numel(); ++i) values.data<float>()[i] = float(step) + float(i) * 1e-3f;
    writer.write("param/w", rows, values);
    writer.finish();
  }
}

SaveInfo save_info(int64_t step) {
  SaveInfo info;
  info.step = step;
  info.layout = {2, 1, false};
  info.tensors = {{"param/w", kWeightShape, DType::F32}};
  return info;
}

fs::path save(const CheckpointStore& store, int64_t step) {
  store.begin_save(step);
  write_shards(store, step);
  return store.commit_save(save_info(step));
}

// A run's checkpoints directory with complete saves of steps 100 and 200.
fs::path two_saves(const std::string& label) {
  const fs::path checkpoints = scratch_dir(label) / "checkpoints";
  CheckpointStore store(checkpoints, 0, "job");
  save(store, 100);
  save(store, 200);
  return checkpoints;
}

void overwrite(const fs::path& path, uint64_t offset, const std::string& bytes) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(std::streamoff(offset));
  file.write(bytes.data(), std::streamsize(bytes.size()));
}

// Edits manifest.json as a person would by hand (its shard files stay untouched and verify).
void edit_manifest(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(dir / "manifest.json"));
  edit(manifest);
  std::ofstream(dir / "manifest.json") << manifest.dump(1);
}

struct Damage {
  const char* name;
  const char* file;       // the file of step_00000200 that is damaged (and must be named)
  const char* expected;   // part of the message
  std::function<void(const fs::path& dir)> apply;
};

const std::vector<Damage>& damages() {
  static const std::vector<Damage> kinds = {
      {"bit flip in data", "shard_tp1_dp0.h5", "checksum",
       [](const fs::path& dir) { flip_bits(dir / "shard_tp1_dp0.h5", fs::file_size(dir / "shard_tp1_dp0.h5") / 2); }},
      {"bit flip in HDF5 metadata", "shard_tp0_dp0.h5", "checksum",
       [](const fs::path& dir) { flip_bits(dir / "shard_tp0_dp0.h5", 200); }},
      {"wrong magic", "shard_tp0_dp0.h5", "checksum",
       [](const fs::path& dir) { overwrite(dir / "shard_tp0_dp0.h5", 0, "NOT-HDF5"); }},
      {"truncation", "shard_tp1_dp0.h5", "truncated",
       [](const fs::path& dir) { fs::resize_file(dir / "shard_tp1_dp0.h5", 4096); }},
      {"missing shard", "shard_tp1_dp0.h5", "missing", [](const fs::path& dir) { fs::remove(dir / "shard_tp1_dp0.h5"); }},
      {"missing manifest", "manifest.json", "no manifest", [](const fs::path& dir) { fs::remove(dir / "manifest.json"); }},
      {"manifest not JSON", "manifest.json", "not valid JSON",
       [](const fs::path& dir) { overwrite(dir / "manifest.json", 0, "\x01\x02garbage"); }},
      {"manifest bit flip in a checksum", "shard_tp0_dp0.h5", "checksum",
       [](const fs::path& dir) {
         std::ifstream in(dir / "manifest.json");
         std::string text((std::istreambuf_iterator<char>(in)), {});
         const size_t at = text.find("\"xxh3_128\": \"") + 13;
         overwrite(dir / "manifest.json", at, text[at] == '0' ? "1" : "0");
       }},
      {"a shard of another save", "shard_tp1_dp0.h5", "files of two saves mixed",
       [](const fs::path& dir) {
         fs::copy_file(dir.parent_path() / "step_00000100" / "shard_tp1_dp0.h5", dir / "shard_tp1_dp0.h5",
                       fs::copy_options::overwrite_existing);
       }},
      // Hand edits of the manifest, which no checksum covers. A step that disagrees with the
      // directory name made a resume set aside the very directory it was resuming from.
      {"manifest step edited", "manifest.json", "records step 150 but its directory is step_00000200",
       [](const fs::path& dir) { edit_manifest(dir, [](nlohmann::json& m) { m["step"] = 150; }); }},
      {"manifest layout TP 0", "manifest.json", "is not a layout",
       [](const fs::path& dir) { edit_manifest(dir, [](nlohmann::json& m) { m["layout"]["tp"] = 0; }); }},
      {"manifest negative tokens", "manifest.json", "tokens_seen -1 is negative",
       [](const fs::path& dir) { edit_manifest(dir, [](nlohmann::json& m) { m["tokens_seen"] = -1; }); }},
      {"manifest shard outside the directory", "manifest.json", "not a file name inside the checkpoint directory",
       [](const fs::path& dir) {
         edit_manifest(dir, [](nlohmann::json& m) { m["shards"][1]["file"] = "../step_00000100/shard_tp1_dp0.h5"; });
       }},
      {"manifest names a dataset the shard lacks", "shard_tp1_dp0.h5", "the manifest lists it but the file does not hold it",
       [](const fs::path& dir) {
         edit_manifest(dir, [](nlohmann::json& m) { m["shards"][1]["slices"][0]["dataset"] = "slice_999999"; });
       }},
      {"manifest moves a slice", "shard_tp1_dp0.h5", "but the file holds tensor 'param/w' at offset [128, 0]",
       [](const fs::path& dir) {
         edit_manifest(dir, [](nlohmann::json& m) {
           std::swap(m["shards"][0]["slices"][0]["offset"], m["shards"][1]["slices"][0]["offset"]);
         });
       }},
  };
  return kinds;
}

// Runs `action` in a forked child with T6_CKPT_CRASH_AT=point; returns the child's exit status.
int run_crashing_at(const std::string& point, const std::function<void()>& action) {
  const pid_t child = fork();
  if (child == 0) {
    setenv("T6_CKPT_CRASH_AT", point.c_str(), 1);
    try {
      action();
    } catch (...) {
      _exit(2);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The value of param/w's first element in a checkpoint: which save it holds.
float first_weight(const ResumePoint& point) {
  ShardFileReader reader(point.dir / "shard_tp0_dp0.h5");
  float value = 0;
  const SliceRecord& slice = point.manifest.shards[0].slices[0];
  reader.read(slice, DType::F32, Box{{0, 0}, {1, 1}}, &value, Box{{0, 0}, {1, 1}});
  return value;
}

}  // namespace

TEST(CheckpointFaults, EveryDamageIsRefusedNamingTheFileAndAutoResumeFallsBack) {
  int handled = 0;
  for (const Damage& damage : damages()) {
    SCOPED_TRACE(damage.name);
    const fs::path checkpoints = two_saves("damage");
    const fs::path dir = checkpoints / "step_00000200";
    damage.apply(dir);
    const std::string message = error_of([&] { resolve_latest(checkpoints, ChecksumCheck::verify); });
    expect_mentions(message, {(dir / damage.file).string(), damage.expected});
    std::optional<ResumePoint> point = resolve_for_auto_resume(checkpoints, ChecksumCheck::verify);
    ASSERT_TRUE(point);
    EXPECT_EQ(point->manifest.step, 100);
    ASSERT_FALSE(point->warnings.empty());
    expect_mentions(point->warnings[0], {"skipping", damage.file});
    handled += message.find(damage.file) != std::string::npos && point->manifest.step == 100;
  }
  EXPECT_EQ(handled, int(damages().size()));
}

TEST(CheckpointFaults, GarbageLatestIsShownEscapedAndAutoResumeTakesTheNewest) {
  const fs::path checkpoints = two_saves("garbage_latest");
  std::ofstream(checkpoints / "latest", std::ios::binary) << std::string("\x01\xff step\0x", 9);
  const std::string message = error_of([&] { resolve_latest(checkpoints, ChecksumCheck::verify); });
  expect_mentions(message, {"latest: holds '\\x01\\xff step\\x00x', not a step directory name"});
  std::optional<ResumePoint> point = resolve_for_auto_resume(checkpoints, ChecksumCheck::verify);
  ASSERT_TRUE(point);
  EXPECT_EQ(point->manifest.step, 200);
  expect_mentions(point->warnings.at(0), {"ignoring `latest`", "\\x01\\xff"});
}

TEST(CheckpointFaults, CrashAtEveryPointOfASaveKeepsTheNewestCommittedCheckpoint) {
  const std::vector<std::string>& points = save_crash_points();
  const std::vector<std::string> after_commit = {"renamed", "latest_written", "pruning"};
  for (bool replacing : {false, true}) {
    for (const std::string& point : points) {
      SCOPED_TRACE(str(point, replacing ? " (re-saving step 300)" : " (saving step 300)"));
      const fs::path checkpoints = scratch_dir("crash") / "checkpoints";
      CheckpointStore first_job(checkpoints, 2, "jobA");
      save(first_job, 100);
      save(first_job, 200);
      if (replacing) save(first_job, 300);
      const int status = run_crashing_at(point, [&] { save(CheckpointStore(checkpoints, 2, "jobB"), 300); });
      // Only a re-save sets an older copy aside; only a new step has an older one to prune (keep 2).
      const bool reached = point == "old_set_aside" ? replacing : point == "pruning" ? !replacing : true;
      EXPECT_EQ(status, reached ? 86 : 0);
      if (!reached) continue;

      // What a restarted job sees: it cleans up first, then resumes.
      recover_interrupted_saves(checkpoints);
      const bool committed = std::find(after_commit.begin(), after_commit.end(), point) != after_commit.end();
      const int64_t newest = committed || replacing ? 300 : 200;
      for (bool strict : {true, false}) {
        const ResumePoint resumed =
            strict ? resolve_latest(checkpoints, ChecksumCheck::verify) : *resolve_for_auto_resume(checkpoints, ChecksumCheck::verify);
        EXPECT_EQ(resumed.manifest.step, newest);
        EXPECT_EQ(first_weight(resumed), float(newest));
      }
      // The checkpoint before it is intact, and the next save goes through.
      EXPECT_TRUE(verify_checkpoint(checkpoints / "step_00000200").empty());
      save(CheckpointStore(checkpoints, 2, "jobC"), 400);
      EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::verify).manifest.step, 400);
      EXPECT_EQ(list_step_dirs(checkpoints).size(), 2u);
    }
  }
}

TEST(CheckpointFaults, FallBackSetsNewerCheckpointsAsideSoPruningKeepsTheContinuedRun) {
  const fs::path checkpoints = scratch_dir("set_aside") / "checkpoints";
  CheckpointStore store(checkpoints, 2, "job");
  for (int64_t step : {100, 200, 300}) save(store, step);
  flip_bits(checkpoints / "step_00000300" / "shard_tp0_dp0.h5", 300);
  const std::optional<ResumePoint> point = resolve_for_auto_resume(checkpoints, ChecksumCheck::verify);
  ASSERT_TRUE(point);
  ASSERT_EQ(point->manifest.step, 200);
  const std::vector<fs::path> moved = set_aside_newer_than(checkpoints, 200, "job2");
  ASSERT_EQ(moved, std::vector<fs::path>{checkpoints / "set_aside" / "step_00000300-job2"});
  // The continued run saves 250 and 260: keep 2 keeps those, not the abandoned 300.
  CheckpointStore continued(checkpoints, 2, "job2");
  save(continued, 250);
  save(continued, 260);
  EXPECT_EQ(list_step_dirs(checkpoints),
            (std::vector<fs::path>{checkpoints / "step_00000250", checkpoints / "step_00000260"}));
  EXPECT_EQ(resolve_for_auto_resume(checkpoints, ChecksumCheck::verify)->manifest.step, 260);
  EXPECT_TRUE(fs::exists(moved[0] / "manifest.json"));
}

TEST(CheckpointFaults, InjectedDiskFullFailsTheSaveWithOneLineAndLeavesNoStaging) {
  const fs::path checkpoints = two_saves("disk_full");
  CheckpointStore store(checkpoints, 0, "job2");
  store.begin_save(300);
  setenv("T6_CKPT_DISK_FULL", "1", 1);
  const std::string message = error_of([&] { write_shards(store, 300); });
  unsetenv("T6_CKPT_DISK_FULL");
  expect_mentions(message, {"shard_tp0_dp0.h5", "No space left on device"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  store.abort_save(300);
  EXPECT_FALSE(fs::exists(store.staging_dir(300)));
  EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::verify).manifest.step, 200);
  // Space freed: the same save now goes through.
  save(store, 300);
  EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::verify).manifest.step, 300);

  // The manifest write failing (after every shard was written) is refused the same way.
  store.begin_save(400);
  write_shards(store, 400);
  setenv("T6_CKPT_DISK_FULL", "1", 1);
  const std::string manifest_message = error_of([&] { store.commit_save(save_info(400)); });
  unsetenv("T6_CKPT_DISK_FULL");
  expect_mentions(manifest_message, {"manifest.json", "No space left on device"});
  store.abort_save(400);
  EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::verify).manifest.step, 300);
}

TEST(CheckpointFaults, RealFullTmpfsFailsTheSaveWithOneLine) {
  const t6::testing::SmallTmpfs tmpfs("tmpfs", "160k");
  if (!tmpfs.mounted()) GTEST_SKIP() << "mounting a tmpfs is not allowed here";
  const fs::path checkpoints = tmpfs.path() / "checkpoints";
  CheckpointStore store(checkpoints, 1, "job");
  save(store, 100);  // 2 × 64 KiB of weights fit once
  store.begin_save(200);
  const std::string message = error_of([&] { write_shards(store, 200); });
  expect_mentions(message, {"shard_tp", "No space left on device"});
  store.abort_save(200);
  EXPECT_FALSE(fs::exists(store.staging_dir(200)));
  EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::verify).manifest.step, 100);
}
