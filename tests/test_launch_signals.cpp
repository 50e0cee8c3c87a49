// ctest-labels: mpi
// ctest-timeout: 200
// SIGTERM to a run started with launch/run_local.sh (2 ranks), sent to the script alone as a user
// does or to its whole process group as a scheduler or Ctrl-C does: every rank finishes its step,
// saves a checkpoint (complete, at the last step in metrics.jsonl) and the launcher exits 0. Plain
// Open MPI would SIGKILL the ranks one second after forwarding the SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "checkpoint/checkpoint_store.h"
#include "common/child_process.h"
#include "common/mpi_training.h"
#include "common/test_paths.h"
#include "common/training_setup.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

void expect_clean_stop(bool whole_group) {
  const fs::path dir = scratch_dir("launch_signal");
  RunConfig config = tiny_run_config(ModelKind::T6, write_shakespeare_corpus((dir / "corpus").string()));
  config.train.max_steps = 1000;
  const fs::path toml = write_run_toml(config, dir / "run.toml");
  const fs::path run_dir = dir / "run", log = dir / "run.log";
  setenv("NPROC", "2", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);  // CI machines may have fewer cores
  const pid_t launcher =
      start_process({"/bin/bash", (source_dir() / "launch/run_local.sh").string(), toml.string(), run_dir.string()}, log);
  const auto started = std::chrono::steady_clock::now();
  while (read_step_records(run_dir.string()).steps.size() < 2) {
    ASSERT_FALSE(wait_exit_code(launcher, 0.01)) << read_text(log);
    ASSERT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(90)) << read_text(log);
  }
  kill(whole_group ? -launcher : launcher, SIGTERM);
  const std::optional<int> exit_code = wait_exit_code(launcher, 90);
  if (!exit_code) kill(-launcher, SIGKILL);
  ASSERT_TRUE(exit_code) << read_text(log);
  EXPECT_EQ(*exit_code, 0) << read_text(log);
  const StepRecords records = read_step_records(run_dir.string());
  ASSERT_FALSE(records.steps.empty());
  EXPECT_LT(records.steps.back(), config.train.max_steps) << "the run ended before the signal";
  const auto latest = checkpoint::resolve_latest(run_dir / "checkpoints", checkpoint::ChecksumCheck::verify);
  EXPECT_EQ(latest.manifest.step, records.steps.back()) << read_text(log);
}

TEST(LaunchSignals, SigtermToTheLauncherSavesAndExitsZero) { expect_clean_stop(false); }
TEST(LaunchSignals, SigtermToTheProcessGroupSavesAndExitsZero) { expect_clean_stop(true); }

}  // namespace
