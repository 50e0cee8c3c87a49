// The checkpoint directory protocol: two-phase save, atomic commit and `latest`, keep-K pruning,
// resume and auto-resume fallback, verify of truncated and bit-flipped shards, manifest round trip.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_store.h"
#include "checkpoint/shard_file.h"
#include "common/file_damage.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"

using namespace t6;
using namespace t6::testing;
using namespace t6::checkpoint;
namespace fs = std::filesystem;

namespace {

const Extents kWeightShape = {256, 64};  // 64 KiB per shard: big enough that a byte mid-file is data

float weight_value(int64_t step, int64_t index) { return float(step) + float(index) * 1e-3f; }

// Two TP ranks each write half of the weight's rows; rank 0 also a small replicated vector.
void write_shards(const CheckpointStore& store, int64_t step) {
  for (int tp_rank = 0; tp_rank < 2; ++tp_rank) {
    ShardFileWriter writer(store.staging_dir(step) / str("shard_tp", tp_rank, "_dp0.h5"), store.save_id(step));
    TensorRegion rows = TensorRegion::split(kWeightShape, 0, 128 * tp_rank, 128 * (tp_rank + 1));
    HostTensor values({rows.numel()}, DType::F32);
    for (int64_t i = 0; i < rows.numel(); ++i) values.data<float>()[i] = weight_value(step, 128 * 64 * tp_rank + i);
    writer.write("param/w", rows, values);
    if (tp_rank == 0) {
      HostTensor bias({4}, DType::F32);
      writer.write("param/b", TensorRegion::whole({4}), bias);
    }
    writer.finish();
  }
}

SaveInfo save_info(int64_t step) {
  SaveInfo info;
  info.step = step;
  info.tokens_seen = step * 1024;
  info.layout = {2, 1, false};
  info.config = {{"model", {{"kind", "T6"}, {"n_layer", 2}}}, {"train", {{"lr_decay_steps", 5000}}}};
  info.state = {{"rng", {{"seed", 1337}, {"counter", step * 7}}}, {"loader", {{"position", step * 8}}}};
  info.tensors = {{"param/w", kWeightShape, DType::F32}, {"param/b", {4}, DType::F32}};
  return info;
}

fs::path save(const CheckpointStore& store, int64_t step) {
  store.begin_save(step);
  write_shards(store, step);
  return store.commit_save(save_info(step));
}

std::string latest_name(const fs::path& checkpoints) {
  std::ifstream in(checkpoints / "latest");
  std::string name;
  std::getline(in, name);
  return name;
}

bool mentions(const std::vector<CheckpointProblem>& problems, const std::string& file, const std::string& text) {
  for (const CheckpointProblem& problem : problems)
    if (problem.file.find(file) != std::string::npos && problem.to_string().find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(CheckpointStore, SaveCommitsManifestAndLatestAndLoadsBack) {
  const fs::path checkpoints = t6::testing::scratch_dir("store_save") / "checkpoints";
  CheckpointStore store(checkpoints, 0, make_save_nonce());
  const fs::path saved = save(store, 1200);
  EXPECT_EQ(saved, checkpoints / "step_00001200");
  EXPECT_EQ(latest_name(checkpoints), "step_00001200");
  EXPECT_FALSE(fs::exists(store.staging_dir(1200)));
  EXPECT_FALSE(fs::exists(saved / "shard_tp0_dp0.h5.index.json"));  // folded into the manifest

  ResumePoint resume = resolve_latest(checkpoints, ChecksumCheck::verify);
  EXPECT_EQ(resume.dir, saved);
  EXPECT_TRUE(resume.warnings.empty());
  EXPECT_EQ(resume.manifest.step, 1200);
  EXPECT_EQ(resume.manifest.tokens_seen, 1200 * 1024);
  EXPECT_EQ(resume.manifest.layout, (CheckpointLayout{2, 1, false}));
  EXPECT_EQ(resume.manifest.config["model"]["kind"], "T6");
  EXPECT_EQ(resume.manifest.state["loader"]["position"], 1200 * 8);
  ASSERT_EQ(resume.manifest.shards.size(), 2u);
  EXPECT_EQ(resume.manifest.shards[1].file, "shard_tp1_dp0.h5");

  CheckpointReader reader(resume.dir, resume.manifest);
  HostTensor row({64}, DType::F32);
  reader.read("param/w", TensorRegion::split(kWeightShape, 0, 200, 201), row);
  EXPECT_EQ(row.data<float>()[3], weight_value(1200, 200 * 64 + 3));
}

TEST(CheckpointStore, CrashedSaveLeavesPreviousCheckpointAndIsCleanedNextTime) {
  const fs::path checkpoints = t6::testing::scratch_dir("store_crash") / "checkpoints";
  save(CheckpointStore(checkpoints, 0, "jobA"), 100);
  // Job A dies while writing step 200: shards written, no commit.
  CheckpointStore job_a(checkpoints, 0, "jobA");
  job_a.begin_save(200);
  write_shards(job_a, 200);
  EXPECT_EQ(latest_name(checkpoints), "step_00000100");
  EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::verify).manifest.step, 100);
  EXPECT_EQ(list_step_dirs(checkpoints), std::vector<fs::path>{checkpoints / "step_00000100"});
  // Job B resumes and saves again: the stale staging directory goes, the new save commits.
  CheckpointStore job_b(checkpoints, 0, "jobB");
  job_b.begin_save(200);
  EXPECT_FALSE(fs::exists(job_a.staging_dir(200)));
  write_shards(job_b, 200);
  job_b.commit_save(save_info(200));
  EXPECT_EQ(resolve_latest(checkpoints, ChecksumCheck::skip).manifest.step, 200);
}

TEST(CheckpointStore, CommitRefusesIncompleteSaves) {
  const fs::path checkpoints = t6::testing::scratch_dir("store_incomplete") / "checkpoints";
  CheckpointStore store(checkpoints, 0, "job");
  save(store, 100);

  // Rank 1 never wrote its half of param/w.
  store.begin_save(200);
  {
    ShardFileWriter writer(store.staging_dir(200) / "shard_tp0_dp0.h5", store.save_id(200));
    TensorRegion rows = TensorRegion::split(kWeightShape, 0, 0, 128);
    writer.write("param/w", rows, HostTensor({rows.numel()}, DType::F32));
    writer.write("param/b", TensorRegion::whole({4}), HostTensor({4}, DType::F32));
    writer.finish();
  }
  std::string message = error_of([&] { store.commit_save(save_info(200)); });
  EXPECT_NE(message.find("tensor 'param/w': 8192 of 16384 elements are in no shard file"), std::string::npos) << message;

  // A writer that did not finish writes nothing; a shard file without its index (a writer killed
  // between the two) is refused.
  { ShardFileWriter unfinished(store.staging_dir(200) / "shard_tp1_dp0.h5", store.save_id(200)); }
  EXPECT_FALSE(fs::exists(store.staging_dir(200) / "shard_tp1_dp0.h5"));
  fs::copy_file(store.staging_dir(200) / "shard_tp0_dp0.h5", store.staging_dir(200) / "shard_tp1_dp0.h5");
  message = error_of([&] { store.commit_save(save_info(200)); });
  EXPECT_NE(message.find("shard_tp1_dp0.h5: shard has no index"), std::string::npos) << message;

  // A tensor the model has but no shard holds.
  SaveInfo info = save_info(200);
  info.tensors.push_back({"adam_m/w", kWeightShape, DType::F32});
  store.begin_save(200);
  write_shards(store, 200);
  message = error_of([&] { store.commit_save(info); });
  EXPECT_NE(message.find("no shard holds tensor 'adam_m/w'"), std::string::npos) << message;
  EXPECT_EQ(latest_name(checkpoints), "step_00000100");
}

TEST(CheckpointStore, KeepsTheLastKCheckpoints) {
  const fs::path checkpoints = t6::testing::scratch_dir("store_keep") / "checkpoints";
  CheckpointStore store(checkpoints, 2, "job");
  for (int64_t step : {10, 20, 30, 40}) save(store, step);
  EXPECT_EQ(list_step_dirs(checkpoints),
            (std::vector<fs::path>{checkpoints / "step_00000030", checkpoints / "step_00000040"}));
  EXPECT_EQ(latest_name(checkpoints), "step_00000040");

  const fs::path keep_all = t6::testing::scratch_dir("store_keep_all") / "checkpoints";
  CheckpointStore unlimited(keep_all, 0, "job");
  for (int64_t step : {10, 20, 30}) save(unlimited, step);
  EXPECT_EQ(list_step_dirs(keep_all).size(), 3u);
}

TEST(CheckpointStore, SavingAStepAgainReplacesIt) {
  const fs::path checkpoints = t6::testing::scratch_dir("store_resave") / "checkpoints";
  CheckpointStore store(checkpoints, 0, "job");
  save(store, 100);
  save(store, 100);
  EXPECT_EQ(list_step_dirs(checkpoints).size(), 1u);
  EXPECT_TRUE(verify_checkpoint(checkpoints / "step_00000100").empty());
}

TEST(CheckpointStore, AutoResumeFallsBackWhenLatestNamesAnIncompleteCheckpoint) {
  const fs::path checkpoints = t6::testing::scratch_dir("store_fallback") / "checkpoints";
  EXPECT_FALSE(resolve_for_auto_resume(checkpoints, ChecksumCheck::skip));  // a fresh run
  CheckpointStore store(checkpoints, 0, "job");
  save(store, 100);
  save(store, 200);
  save(store, 300);
  fs::remove(checkpoints / "step_00000300" / "manifest.json");  // as if the save had been interrupted

  std::string message = error_of([&] { resolve_latest(checkpoints, ChecksumCheck::skip); });
  EXPECT_NE(message.find("step_00000300/manifest.json: no manifest"), std::string::npos) << message;

  std::optional<ResumePoint> resume = resolve_for_auto_resume(checkpoints, ChecksumCheck::skip);
  ASSERT_TRUE(resume);
  EXPECT_EQ(resume->manifest.step, 200);
  ASSERT_EQ(resume->warnings.size(), 2u);
  EXPECT_NE(resume->warnings[0].find("step_00000300"), std::string::npos) << resume->warnings[0];

  // `latest` missing altogether: the newest complete checkpoint, with a warning.
  fs::remove(checkpoints / "latest");
  resume = resolve_for_auto_resume(checkpoints, ChecksumCheck::skip);
  ASSERT_TRUE(resume);
  EXPECT_EQ(resume->manifest.step, 200);

  // Step directories exist but none is complete: an error, never a silent fresh start.
  fs::remove(checkpoints / "step_00000100" / "manifest.json");
  fs::remove(checkpoints / "step_00000200" / "shard_tp1_dp0.h5");
  message = error_of([&] { resolve_for_auto_resume(checkpoints, ChecksumCheck::skip); });
  EXPECT_NE(message.find("no complete checkpoint"), std::string::npos) << message;
  EXPECT_NE(message.find("shard_tp1_dp0.h5: shard file is missing"), std::string::npos) << message;
}

TEST(CheckpointVerify, DirectoryWithoutManifestIsOneProblem) {
  const fs::path dir = t6::testing::scratch_dir("verify_no_manifest");
  std::vector<CheckpointProblem> problems = verify_checkpoint(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            (dir / "manifest.json").string() + ": no manifest (an interrupted save, or not a checkpoint directory)");
}

TEST(CheckpointVerify, TruncatedShardIsNamed) {
  const fs::path checkpoints = t6::testing::scratch_dir("verify_truncated") / "checkpoints";
  const fs::path dir = save(CheckpointStore(checkpoints, 0, "job"), 100);
  const fs::path shard = dir / "shard_tp1_dp0.h5";
  fs::resize_file(shard, fs::file_size(shard) / 2);

  std::vector<CheckpointProblem> problems = verify_checkpoint(dir);
  ASSERT_FALSE(problems.empty());
  EXPECT_TRUE(mentions(problems, "shard_tp1_dp0.h5", "truncated")) << problems[0].to_string();
  std::string message = error_of([&] { resolve_latest(checkpoints, ChecksumCheck::skip); });
  EXPECT_NE(message.find("shard_tp1_dp0.h5: size is"), std::string::npos) << message;
}

TEST(CheckpointVerify, BitFlipIsNamedWithItsFileAndDataset) {
  const fs::path checkpoints = t6::testing::scratch_dir("verify_flip") / "checkpoints";
  const fs::path dir = save(CheckpointStore(checkpoints, 0, "job"), 100);
  EXPECT_TRUE(verify_checkpoint(dir).empty());
  const fs::path shard = dir / "shard_tp1_dp0.h5";
  t6::testing::flip_bits(shard, fs::file_size(shard) / 2);  // inside the 32 KiB of weights
  // Same size: the cheap check passes, the checksum pass does not.
  EXPECT_NO_THROW(resolve_latest(checkpoints, ChecksumCheck::skip));
  std::vector<CheckpointProblem> problems = verify_checkpoint(dir);
  EXPECT_TRUE(mentions(problems, "shard_tp1_dp0.h5", "checksum")) << (problems.empty() ? "" : problems[0].to_string());
  EXPECT_TRUE(mentions(problems, "shard_tp1_dp0.h5", "dataset slice_000000 (tensor 'param/w')"));
  EXPECT_FALSE(mentions(problems, "shard_tp0_dp0.h5", ""));
  std::string message = error_of([&] { resolve_latest(checkpoints, ChecksumCheck::verify); });
  EXPECT_NE(message.find("shard_tp1_dp0.h5: XXH3-128 checksum is"), std::string::npos) << message;
  // Auto-resume with checksums skips the damaged checkpoint rather than loading it.
  EXPECT_THROW(resolve_for_auto_resume(checkpoints, ChecksumCheck::verify), Error);
}

// Digests other ranks took are used instead of reading the file again: a digest known for a
// file is believed (the damaged file below passes), and a wrong one is caught as damage.
TEST(CheckpointVerify, KnownDigestsStandForReadingTheFile) {
  const fs::path checkpoints = t6::testing::scratch_dir("verify_known") / "checkpoints";
  const fs::path dir = save(CheckpointStore(checkpoints, 0, "job"), 100);
  const fs::path shard = dir / "shard_tp1_dp0.h5";
  KnownDigests known{{shard.lexically_normal(), digest_file(shard)}};
  t6::testing::flip_bits(shard, fs::file_size(shard) / 2);
  EXPECT_NO_THROW(resolve_latest(checkpoints, ChecksumCheck::verify, {}, &known));
  EXPECT_THROW(resolve_latest(checkpoints, ChecksumCheck::verify), Error);

  t6::testing::flip_bits(shard, fs::file_size(shard) / 2);  // whole again
  known[shard.lexically_normal()].xxh3_128 = std::string(32, '0');
  std::string message = error_of([&] { resolve_latest(checkpoints, ChecksumCheck::verify, {}, &known); });
  EXPECT_NE(message.find("shard_tp1_dp0.h5: XXH3-128 checksum is"), std::string::npos) << message;
  EXPECT_NO_THROW(resolve_latest(checkpoints, ChecksumCheck::verify));
}

TEST(Manifest, RoundTripsThroughJsonAndFile) {
  Manifest manifest;
  manifest.step = 12000;
  manifest.tokens_seen = int64_t(1) << 40;
  manifest.layout = {4, 8, true};
  manifest.config = {{"model", {{"kind", "T6"}}}, {"train", {{"lr", 3e-4}}}};
  manifest.tensors = {{"param/a/b.c", {34, 6}, DType::F32}, {"rng/state", {2}, DType::U64}};
  manifest.shards = {{"shard_tp0_dp0.h5", 12345, "0123456789abcdef0123456789abcdef",
                      {{"param/a/b.c", "slice_000000", Box{{0, 0}, {9, 6}}}}}};
  manifest.state = {{"loader", {{"position", 77}}}};

  Manifest parsed = manifest_from_json(to_json(manifest), "test");
  EXPECT_EQ(parsed.step, manifest.step);
  EXPECT_EQ(parsed.tokens_seen, manifest.tokens_seen);
  EXPECT_EQ(parsed.layout, manifest.layout);
  EXPECT_EQ(parsed.config, manifest.config);
  EXPECT_EQ(parsed.tensors, manifest.tensors);
  EXPECT_EQ(parsed.shards, manifest.shards);
  EXPECT_EQ(parsed.state, manifest.state);

  const fs::path file = t6::testing::scratch_dir("manifest") / "manifest.json";
  write_manifest(manifest, file);
  EXPECT_EQ(read_manifest(file).shards, manifest.shards);

  nlohmann::json wrong = to_json(manifest);
  wrong["format_version"] = 99;
  std::string message = error_of([&] { manifest_from_json(wrong, "m.json"); });
  EXPECT_NE(message.find("m.json: format version 99"), std::string::npos) << message;
  wrong = to_json(manifest);
  wrong["tensors"][0].erase("shape");
  message = error_of([&] { manifest_from_json(wrong, "m.json"); });
  EXPECT_NE(message.find("m.json: tensor 'param/a/b.c': missing key 'shape'"), std::string::npos) << message;
  std::ofstream(file) << "{ not json";
  message = error_of([&] { read_manifest(file); });
  EXPECT_NE(message.find("manifest is not valid JSON"), std::string::npos) << message;
}

TEST(CheckpointStore, StepDirectoryNames) {
  EXPECT_EQ(step_dir_name(12000), "step_00012000");
  EXPECT_EQ(parse_step_dir_name("step_00012000"), 12000);
  EXPECT_EQ(parse_step_dir_name("step_123456789"), 123456789);
  EXPECT_FALSE(parse_step_dir_name("step_00012000.tmp-abc"));
  EXPECT_FALSE(parse_step_dir_name("step_"));
  EXPECT_FALSE(parse_step_dir_name("latest"));
  EXPECT_NE(make_save_nonce(), make_save_nonce());
}
