// ctest-mpi-ranks: 2
// ctest-timeout: 300
// Run directories at 2 ranks: a fresh run (no --resume, checkpoint.resume = "never") in a directory
// that holds a run is refused on every rank and leaves its metrics.jsonl and `latest` byte for byte
// as they were; a directory that cannot be written, or whose checkpoints/ no save could write (a
// file, or a `latest` that is a directory), is refused at start-up naming it; a directory
// whose job lock, or whose rank lock (ranks of a killed job still exiting), is held elsewhere is
// refused after a bounded wait, and nothing is written there.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "common/child_process.h"
#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/training_setup.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

RunConfig short_config() {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.train.max_steps = 2;
  config.parallel.timeout_s = 2;  // the bounded wait for a lock is min(30 s, half of this)
  return config;
}

std::string train_error(const RunConfig& config, const std::string& run_dir) {
  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 1, 0);
  return error_of([&] {
    Trainer trainer(config, grid, run_dir);
    trainer.run();
  });
}

TEST(RunDirectory, FreshRunOverAnExistingRunIsRefusedAndTouchesNothing) {
  const RunConfig config = short_config();
  const std::string run_dir = shared_run_dir("existing");
  {
    ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 1, 0);
    Trainer first(config, grid, run_dir);
    first.run();
  }
  const std::string metrics = read_text(run_dir + "/metrics.jsonl");
  const std::string latest = read_text(run_dir + "/checkpoints/latest");
  ASSERT_FALSE(metrics.empty());
  expect_mentions(train_error(config, run_dir), {run_dir, "already holds a run", "--resume"});
  EXPECT_EQ(read_text(run_dir + "/metrics.jsonl"), metrics);
  EXPECT_EQ(read_text(run_dir + "/checkpoints/latest"), latest);
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

TEST(RunDirectory, UnwritableRunDirectoryIsRefusedAtStartUp) {
  // Root may write anywhere, so the directory is made impossible: below a regular file.
  const std::string parent = shared_run_dir("unwritable");
  if (world_rank() == 0) std::ofstream(parent + "/file") << "x";
  const std::string run_dir = parent + "/file/run";
  expect_mentions(train_error(short_config(), run_dir), {run_dir, "cannot create the run directory"});
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

TEST(RunDirectory, CheckpointsThatNoSaveCouldWriteAreRefusedAtStartUp) {
  // Both trained to the end before and failed at the first save, with a raw filesystem error.
  const std::string file_parent = shared_run_dir("checkpoints_file");
  if (world_rank() == 0) std::ofstream(file_parent + "/checkpoints") << "x";
  expect_mentions(train_error(short_config(), file_parent), {file_parent + "/checkpoints", "is not a directory"});
  EXPECT_FALSE(fs::exists(file_parent + "/metrics.jsonl"));

  const std::string dir_latest = shared_run_dir("latest_dir");
  if (world_rank() == 0) fs::create_directories(dir_latest + "/checkpoints/latest");
  RunConfig resuming = short_config();
  resuming.checkpoint.resume = "auto";
  expect_mentions(train_error(resuming, dir_latest), {dir_latest + "/checkpoints/latest", "is a directory"});
  EXPECT_FALSE(fs::exists(dir_latest + "/metrics.jsonl"));
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

void expect_refused_while_locked(const std::string& lock_name, int mode, const std::vector<std::string>& mentions) {
  const std::string run_dir = shared_run_dir("locked");
  int held = -1;
  if (world_rank() == 0) {
    held = ::open((run_dir + "/" + lock_name).c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_EQ(::flock(held, mode), 0);
  }
  std::vector<std::string> expected = mentions;
  expected.push_back(run_dir);
  expect_mentions(train_error(short_config(), run_dir), expected);
  EXPECT_FALSE(fs::exists(run_dir + "/metrics.jsonl"));
  EXPECT_FALSE(fs::exists(run_dir + "/checkpoints/latest"));
  if (held >= 0) ::close(held);
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

TEST(RunDirectory, SecondJobIsRefusedAfterABoundedWait) {
  expect_refused_while_locked(".t6_job.lock", LOCK_EX, {"another job is using this run directory", "waited 1 s"});
}

TEST(RunDirectory, RelaunchWhileEarlierRanksStillRunIsRefused) {
  expect_refused_while_locked(".t6_ranks.lock", LOCK_SH, {"ranks of an earlier job are still running"});
}

}  // namespace
