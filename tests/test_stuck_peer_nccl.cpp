// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// ctest-timeout: 300
// A stuck peer ends an NCCL job too (t6_pretrain on the emulated GPU, two ranks of TP 2, or of DP 2
// with ZeRO-1, one emulated device each): rank 1 is stopped with SIGSTOP during its first step,
// while rank 0 waits for it in an NCCL collective (a TP sum; a ZeRO-1 bucket's reduce), where no
// MPI probe can answer; the watchdog aborts the communicators at parallel.timeout_s and rank 0
// ends the job with one line naming the step.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <thread>

#include "common/child_process.h"
#include "common/test_paths.h"
#include "common/training_setup.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

constexpr double kTimeout = 4;

// Two ranks of `tp` TP ranks each (the rest DP) train until rank 1 is stopped: rank 0 must end the
// job within the timeout, naming step 1 and the aborted NCCL communicators.
void expect_stopped_rank_ends_the_job(const std::string& label, int64_t tp, bool zero1) {
  const fs::path dir = scratch_dir(label);
  RunConfig config = tiny_run_config(ModelKind::T6, write_shakespeare_corpus((dir / "corpus").string()));
  config.train.max_steps = 1000;
  config.parallel.tp = tp;
  config.parallel.zero1 = zero1;
  config.parallel.backend = "cuda";
  config.parallel.communicator = "nccl";
  config.parallel.timeout_s = kTimeout;
  const fs::path toml = write_run_toml(config, dir / "run.toml");
  const fs::path run_dir = dir / "run", log = dir / "run.log";
  setenv("T6_EMU_DEVICES", "2", 1);  // NCCL: a GPU per rank, chosen by node-local rank
  const pid_t launcher = start_mpi_pretrain(2, {"--config", toml.string(), "--run-dir", run_dir.string()}, log);
  unsetenv("T6_EMU_DEVICES");
  const pid_t rank1 = mpi_rank_pid(launcher, 1);
  ASSERT_GT(rank1, 0) << read_text(log);
  // The start-up table ends the ranks' last host collective before the first step, whose
  // collectives are all NCCL's; an emulated step takes seconds.
  const auto started = std::chrono::steady_clock::now();
  while (read_text(log).find("  run  ") == std::string::npos) {
    ASSERT_FALSE(wait_exit_code(launcher, 0.01)) << read_text(log);
    ASSERT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(120)) << read_text(log);
  }
  const StoppedRankOutcome outcome = stop_rank_and_wait(launcher, rank1, kTimeout + 60);
  const std::string text = read_text(log);
  ASSERT_TRUE(outcome.exit_code) << "the job hung with a stopped rank\n" << text;
  EXPECT_NE(*outcome.exit_code, 0);
  // The timeout itself, plus the watchdog's 50 ms look and mpirun's teardown of a stopped process.
  EXPECT_LT(outcome.seconds, kTimeout + 30) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("rank 0: t6_pretrain: error: step 1: its NCCL collectives waited 4 s: "
                                                 "a peer did not complete them .*the NCCL communicators were aborted")))
      << text;
}

// TP 2: rank 0 waits in the first step's first TP sum (the embedding's).
TEST(StuckPeerNccl, StoppedRankEndsTheJobWithinTheTimeoutNamingTheStep) {
  expect_stopped_rank_ends_the_job("stuck_nccl", 2, false);
}

// DP 2 with ZeRO-1: no TP sums; rank 0 waits in a reduce of a gradient bucket, started during the
// backward, to the rank that owns its piece.
TEST(StuckPeerNccl, StoppedRankEndsAZero1JobInItsBucketReductions) {
  expect_stopped_rank_ends_the_job("stuck_nccl_zero1", 1, true);
}

}  // namespace
