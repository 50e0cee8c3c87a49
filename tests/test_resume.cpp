// ctest-mpi-ranks: 4
// ctest-timeout: 300
// Checkpoints of a training run resume exactly and at any layout: a run stopped at step 3 and
// resumed reproduces the uninterrupted run's losses bit for bit (same layout, TP2×DP2 with and
// without ZeRO-1, and MLA with ZeRO-1) with every step once in metrics.jsonl; a TP2×DP2 checkpoint
// loads at TP4 (6 heads split 2, 2, 1, 1), DP4 (± ZeRO-1) and TP1 and continues within 1e-5 (MLA:
// at TP4 and TP1); the offline reshard loads to the same weights and moments as resharding on
// load; a model mismatch is refused naming the keys; another seed, batch, sequence length or corpus
// is refused naming the keys unless allowed, and tokens seen are advanced across the change; a
// full disk on one rank fails the save on every rank, leaves no staging directory and the run
// resumes once space is back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "train_state/reshard.h"
#include "common/mpi_environment.h"
#include "common/error_expectations.h"
#include "common/mpi_training.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "parallel/mpi_communicator.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kStopStep = 3, kSteps = 6;

// Both runs decay the LR over kSteps, so stopping early does not change the schedule.
RunConfig config_of(int tp, bool zero1, int64_t max_steps, ModelKind kind = ModelKind::T6) {
  RunConfig config = tiny_run_config(kind, shared_corpus());
  config.parallel.tp = tp;
  config.parallel.zero1 = zero1;
  config.train.max_steps = max_steps;
  config.train.lr_decay_steps = kSteps;
  return config;
}

std::vector<double> run_to_end(const RunConfig& config, MPI_Comm comm, const std::string& run_dir, ResumeMode resume,
                               const std::vector<std::string>& allowed_changes = {}) {
  ProcessGrid grid(communicator_of(comm), int(config.parallel.tp), 0);
  Trainer trainer(config, grid, run_dir, resume, allowed_changes);
  trainer.run();
  return read_step_records(run_dir).losses;
}

// A run dir holding a copy of `source`'s checkpoints (rank 0 copies, or each rank for itself).
std::string copy_of_checkpoints(const std::string& source, const std::string& label, bool per_rank) {
  const std::string run_dir = per_rank ? scratch_dir(label).string() : shared_run_dir(label);
  if (per_rank || world_rank() == 0) fs::copy(fs::path(source) / "checkpoints", fs::path(run_dir) / "checkpoints", fs::copy_options::recursive);
  MPI_Barrier(MPI_COMM_WORLD);
  return run_dir;
}

void expect_losses_near(const std::vector<double>& actual, const std::vector<double>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], 1e-5 * std::fabs(expected[i])) << what << ", loss " << i;
}

struct SavedRun {
  std::string stopped_dir;       // run dir with the checkpoint of step kStopStep (and the run's end)
  std::vector<double> straight;  // the uninterrupted run's losses
};

SavedRun exact_resume(int tp, bool zero1, ModelKind kind = ModelKind::T6) {
  SavedRun saved;
  const std::string straight_dir = shared_run_dir("straight");
  saved.straight = run_to_end(config_of(tp, zero1, kSteps, kind), MPI_COMM_WORLD, straight_dir, ResumeMode::from_config);
  saved.stopped_dir = shared_run_dir("stopped");
  run_to_end(config_of(tp, zero1, kStopStep, kind), MPI_COMM_WORLD, saved.stopped_dir, ResumeMode::from_config);
  const std::string resumed_dir = copy_of_checkpoints(saved.stopped_dir, "resumed", false);
  if (world_rank() == 0) fs::copy(saved.stopped_dir + "/metrics.jsonl", resumed_dir + "/metrics.jsonl");
  MPI_Barrier(MPI_COMM_WORLD);
  const std::vector<double> resumed =
      run_to_end(config_of(tp, zero1, kSteps, kind), MPI_COMM_WORLD, resumed_dir, ResumeMode::latest);
  if (world_rank() == 0) {
    EXPECT_EQ(resumed, saved.straight);  // bit-identical
    const StepRecords metrics = read_step_records(resumed_dir);
    EXPECT_EQ(metrics.steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  }
  return saved;
}

// The TP2×DP2 runs, made by the two exact-resume tests and reused by the reshard tests.
const SavedRun& saved_tp2_dp2(bool zero1) {
  if (zero1) {
    static const SavedRun sharded = exact_resume(2, true);
    return sharded;
  }
  static const SavedRun plain = exact_resume(2, false);
  return plain;
}

TEST(Resume, ExactAtTensorParallel2DataParallel2) {
  // Without ZeRO-1 both DP replicas write a part of the state: four shard files, none empty.
  const checkpoint::Manifest manifest = checkpoint::read_manifest(
      fs::path(saved_tp2_dp2(false).stopped_dir) / "checkpoints" / checkpoint::step_dir_name(kStopStep) / "manifest.json");
  ASSERT_EQ(manifest.shards.size(), 4u);
  for (const checkpoint::ShardRecord& shard : manifest.shards) EXPECT_FALSE(shard.slices.empty()) << shard.file;
}

TEST(Resume, ExactAtTensorParallel2DataParallel2Zero1) { saved_tp2_dp2(true); }

void expect_reshard_on_load(const SavedRun& saved, int tp, bool zero1, ModelKind kind = ModelKind::T6) {
  const std::string run_dir = copy_of_checkpoints(saved.stopped_dir, "reshard", false);
  const std::vector<double> losses =
      run_to_end(config_of(tp, zero1, kSteps, kind), MPI_COMM_WORLD, run_dir, ResumeMode::latest);
  if (world_rank() == 0)
    expect_losses_near(losses, std::vector<double>(saved.straight.begin() + kStopStep, saved.straight.end()),
                       str("TP", tp, zero1 ? " ZeRO-1" : ""));
}

void expect_reshard_on_load(bool saved_zero1, int tp, bool zero1) {
  expect_reshard_on_load(saved_tp2_dp2(saved_zero1), tp, zero1);
}

// Loads the checkpoint on one rank alone (each rank for itself) and continues.
void expect_loads_at_tp1(const SavedRun& saved, ModelKind kind) {
  const std::string run_dir = copy_of_checkpoints(saved.stopped_dir, "single", true);
  const std::vector<double> losses =
      run_to_end(config_of(1, false, kSteps, kind), MPI_COMM_SELF, run_dir, ResumeMode::latest);
  expect_losses_near(losses, std::vector<double>(saved.straight.begin() + kStopStep, saved.straight.end()), "TP1");
}

TEST(Resume, Tp2Dp2LoadsAtTp4WithUnevenHeads) { expect_reshard_on_load(false, 4, false); }
TEST(Resume, Tp2Dp2Zero1LoadsAtTp4) { expect_reshard_on_load(true, 4, false); }
TEST(Resume, Tp2Dp2LoadsAtDp4) { expect_reshard_on_load(false, 1, false); }
TEST(Resume, Tp2Dp2LoadsAtDp4Zero1) { expect_reshard_on_load(false, 1, true); }
TEST(Resume, Tp2Dp2Zero1LoadsAtDp4Zero1) { expect_reshard_on_load(true, 1, true); }

TEST(Resume, Tp2Dp2Zero1LoadsAtTp1) { expect_loads_at_tp1(saved_tp2_dp2(true), ModelKind::T6); }

// MLA (6 heads): the head-split q_b_proj/kv_b_proj and the replicated latent weights and norms,
// saved at TP2×DP2 with ZeRO-1, resume exactly there and reshard on load to TP4 (2, 2, 1, 1) and TP1.
const SavedRun& saved_mla_tp2_dp2_zero1() {
  static const SavedRun saved = exact_resume(2, true, ModelKind::llama_mla);
  return saved;
}

TEST(Resume, MlaExactAtTensorParallel2DataParallel2Zero1) { saved_mla_tp2_dp2_zero1(); }
TEST(Resume, MlaTp2Dp2Zero1LoadsAtTp4WithUnevenHeads) {
  expect_reshard_on_load(saved_mla_tp2_dp2_zero1(), 4, false, ModelKind::llama_mla);
}
TEST(Resume, MlaTp2Dp2Zero1LoadsAtTp1) { expect_loads_at_tp1(saved_mla_tp2_dp2_zero1(), ModelKind::llama_mla); }

// Everything a trainer loaded: its weights and both moments, flat.
std::vector<float> loaded_state(const RunConfig& config, const std::string& run_dir) {
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), int(config.parallel.tp), 0);
  Trainer trainer(config, grid, run_dir, ResumeMode::latest);
  std::vector<float> state;
  for (const Tensor& tensor : {trainer.model().weights().params(), trainer.optimizer().adamw().first_moment(),
                               trainer.optimizer().adamw().second_moment()})
    state.insert(state.end(), tensor.data<float>(), tensor.data<float>() + tensor.numel());
  return state;
}

TEST(Resume, OfflineReshardLoadsLikeOnlineReshard) {
  const SavedRun& saved = saved_tp2_dp2(true);
  const std::string offline_dir = shared_run_dir("offline");
  if (world_rank() == 0) {
    const auto source = checkpoint::open_checkpoint_path(saved.stopped_dir + "/checkpoints/" +
                                                         checkpoint::step_dir_name(kStopStep), checkpoint::ChecksumCheck::verify);
    checkpoint::reshard_checkpoint(source, fs::path(offline_dir) / "checkpoints", {4, 1, false});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string online_dir = copy_of_checkpoints(saved.stopped_dir, "online", false);
  const RunConfig config = config_of(4, false, kSteps);
  EXPECT_EQ(loaded_state(config, offline_dir), loaded_state(config, online_dir));
}

TEST(Resume, AnotherModelIsRefusedNamingTheKeys) {
  RunConfig config = config_of(2, false, kSteps);
  config.model.n_layer = 3;
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 2, 0);
  try {
    Trainer trainer(config, grid, saved_tp2_dp2(false).stopped_dir, ResumeMode::latest);
    ADD_FAILURE() << "loaded a checkpoint of another model";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("model.n_layer (checkpoint 2, run 3)"), std::string::npos) << error.what();
  }
}

TEST(Resume, ResumeWithoutCheckpointIsAnErrorAndAutoStartsAfresh) {
  RunConfig config = config_of(2, false, 1);
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 2, 0);
  EXPECT_THROW(Trainer(config, grid, shared_run_dir("empty"), ResumeMode::latest), Error);
  config.checkpoint.resume = "auto";
  Trainer trainer(config, grid, shared_run_dir("auto"));
  EXPECT_EQ(trainer.step(), 0);
}

std::string error_of_resume(const RunConfig& config, const std::string& run_dir,
                            const std::vector<std::string>& allowed = {}) {
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), int(config.parallel.tp), 0);
  try {
    Trainer trainer(config, grid, run_dir, ResumeMode::latest, allowed);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(Resume, AnotherSeedBatchLengthOrCorpusIsRefusedUnlessAllowed) {
  const std::string run_dir = copy_of_checkpoints(saved_tp2_dp2(false).stopped_dir, "meaning", false);
  RunConfig changed = config_of(2, false, kSteps);
  changed.train.seed = 8;
  changed.train.global_batch_size = 16;
  changed.train.seq_len = 8;
  const std::string message = error_of_resume(changed, run_dir);
  expect_mentions(message, {"cannot resume", "train.seed (checkpoint 7, run 8)",
                            "train.global_batch_size (checkpoint 8, run 16)", "train.seq_len (checkpoint 16, run 8)",
                            "--allow-change"});
  EXPECT_EQ(message.find("data.corpus"), std::string::npos) << message;
  expect_mentions(error_of_resume(changed, run_dir, {"train.seed", "train.seq_len"}), {"train.global_batch_size"});
  expect_mentions(error_of_resume(changed, run_dir, {"train.sed"}), {"--allow-change train.sed"});

  // The same corpus elsewhere is the same corpus; another index.json is another corpus.
  const std::string moved = shared_run_dir("moved_corpus") + "/corpus";
  if (world_rank() == 0) fs::copy(shared_corpus(), moved, fs::copy_options::recursive);
  MPI_Barrier(MPI_COMM_WORLD);
  RunConfig same = config_of(2, false, kSteps);
  same.data.path = moved;
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 2, 0);
  EXPECT_NO_THROW(Trainer(same, grid, run_dir, ResumeMode::latest));
  if (world_rank() == 0) std::ofstream(moved + "/index.json", std::ios::app) << "\n";
  MPI_Barrier(MPI_COMM_WORLD);
  expect_mentions(error_of_resume(same, run_dir), {"data.corpus", moved, "index.json"});

  // Allowed: the run continues with the new batch, and tokens seen add up step by step.
  RunConfig bigger = config_of(2, false, kSteps);
  bigger.train.global_batch_size = 16;
  run_to_end(bigger, MPI_COMM_WORLD, run_dir, ResumeMode::latest, {"train.global_batch_size"});
  const auto latest = checkpoint::resolve_latest(fs::path(run_dir) / "checkpoints", checkpoint::ChecksumCheck::verify);
  EXPECT_EQ(latest.manifest.step, kSteps);
  EXPECT_EQ(latest.manifest.tokens_seen, kStopStep * 8 * 16 + (kSteps - kStopStep) * 16 * 16);
}

TEST(Resume, DiskFullOnOneRankFailsTheSaveEverywhereAndTheRunResumesLater) {
  const std::string run_dir = copy_of_checkpoints(saved_tp2_dp2(false).stopped_dir, "disk_full", false);
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  RunConfig config = config_of(2, false, kStopStep + 1);
  if (world_rank() == 1) setenv("T6_CKPT_DISK_FULL", "1", 1);
  const std::string message = [&] {
    ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 2, 0);
    Trainer trainer(config, grid, run_dir, ResumeMode::latest);
    return error_of([&] { trainer.run(); });
  }();
  unsetenv("T6_CKPT_DISK_FULL");
  // Every rank has the same error: the lowest failing rank's, naming it (rank_failure.h).
  expect_mentions(message, {"rank 1: ", "shard_tp1_dp0.h5", "No space left on device", "staging directory removed",
                            "earlier checkpoints are intact"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  MPI_Barrier(MPI_COMM_WORLD);
  for (const auto& entry : fs::directory_iterator(checkpoints))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  // Space is back: the run resumes from the last checkpoint and saves.
  run_to_end(config, MPI_COMM_WORLD, run_dir, ResumeMode::latest);
  EXPECT_EQ(checkpoint::resolve_latest(checkpoints, checkpoint::ChecksumCheck::verify).manifest.step, kStopStep + 1);
}

}  // namespace
