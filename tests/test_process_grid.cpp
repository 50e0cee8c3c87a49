// ctest-mpi-ranks: 4
// ProcessGrid on 4 ranks: TP groups of consecutive ranks, DP groups striding across them, checked by
// gathering the members of each group; layouts that do not fit are the same clear error on every
// rank. Also the tool runtime: a tool main whose rank 1 throws ends the whole job with one error
// line, not a hang (and, with the peer watch, rank 0 learns of it at once), and log_info prints on
// rank 0 only.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "common/mpi_environment.h"
#include "common/test_paths.h"
#include "core/log.h"
#include "parallel/mpi_runtime.h"
#include "parallel/peer_watch.h"
#include "parallel/process_grid.h"
#include "parallel/rank_failure.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;

namespace {

// The world ranks of the members of group, in group rank order.
std::vector<int32_t> members_of(Communicator& group, int world_rank) {
  std::vector<int32_t> mine = {world_rank};
  std::vector<int32_t> members(static_cast<size_t>(group.size()), -1);
  group.all_gather(Tensor(mine.data(), {1}, DType::I32), Tensor(members.data(), {group.size()}, DType::I32));
  return members;
}

std::vector<int32_t> range_of(int first, int count, int stride) {
  std::vector<int32_t> ranks;
  for (int i = 0; i < count; ++i) ranks.push_back(first + i * stride);
  return ranks;
}

class ProcessGridLayout : public ::testing::TestWithParam<int> {};

}  // namespace

TEST_P(ProcessGridLayout, TpGroupsAreConsecutiveAndDpGroupsStride) {
  const int tp = GetParam();
  ProcessGrid grid = make_mpi_process_grid(tp);
  const int rank = grid.world_rank();
  EXPECT_EQ(grid.world_size(), 4);
  EXPECT_EQ(grid.tp_size(), tp);
  EXPECT_EQ(grid.dp_size(), 4 / tp);
  EXPECT_EQ(grid.tp_rank(), rank % tp);
  EXPECT_EQ(grid.dp_rank(), rank / tp);
  EXPECT_EQ(members_of(grid.tp(), rank), range_of(rank / tp * tp, tp, 1));
  EXPECT_EQ(members_of(grid.dp(), rank), range_of(rank % tp, 4 / tp, tp));
  EXPECT_EQ(members_of(grid.world(), rank), range_of(0, 4, 1));
}

INSTANTIATE_TEST_SUITE_P(Tp, ProcessGridLayout, ::testing::Values(1, 2, 4));

TEST(ProcessGrid, LocalRankIsTheRankOnThisNode) {
  ProcessGrid grid = make_mpi_process_grid(2);
  // mpirun on one machine: every rank shares the node, so the local rank is the world rank, as
  // Open MPI also reports it.
  EXPECT_EQ(grid.local_rank(), grid.world_rank());
  if (const char* ompi_local_rank = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) {
    EXPECT_EQ(grid.local_rank(), std::atoi(ompi_local_rank));
  }
}

TEST(ProcessGrid, WorldSizeNotDivisibleByTpIsAnErrorOnEveryRank) {
  std::string message;
  try {
    make_mpi_process_grid(3);
  } catch (const Error& error) {
    message = error.what();
  }
  EXPECT_EQ(message, "parallel.tp = 3 does not fit the world of 4 ranks: it must divide the world size (valid: 1, 2, 4)");
  EXPECT_THROW(make_mpi_process_grid(0), Error);
  // Reaching this collective on every rank shows no rank was left waiting inside a split.
  EXPECT_TRUE(t6::testing::all_ranks_agree(!message.empty()));
}

// The one agreement every "some ranks failed" path uses (rank_failure.h): nothing when no rank
// failed; else every rank gets the lowest failing rank's own message, naming that rank.
TEST(AgreeOnFailure, EveryRankGetsTheLowestFailingRanksMessage) {
  auto grid = make_mpi_process_grid(1);
  Communicator& world = grid.world();
  EXPECT_FALSE(agree_on_failure(world, ""));
  const int rank = world.rank();
  const AgreedFailure agreed = agree_on_failure(world, rank == 1 || rank == 3 ? str("disk full on rank ", rank) : "");
  EXPECT_EQ(agreed.rank, 1);
  EXPECT_EQ(agreed.message, "disk full on rank 1");
  try {
    agreed.raise(" (save abandoned)");
    ADD_FAILURE() << "raise() returned";
  } catch (const RankError& error) {
    EXPECT_EQ(error.rank(), 1);
    EXPECT_EQ(std::string(error.what()), "rank 1: disk full on rank 1 (save abandoned)");
    EXPECT_EQ(error.detail(), "disk full on rank 1 (save abandoned)");
  }
}

// Run only as the child of the test below (it is DISABLED_ so the normal run skips it): rank 1
// fails while rank 0 waits in a barrier that rank 1 never reaches.
TEST(MpiToolChild, DISABLED_FailingRankAbortsTheWorld) {
  run_on_every_rank("t6_test_tool", [] {
    auto world = make_mpi_process_grid(1);
    if (world.world_rank() == 1) fail("deliberate failure on rank 1");
    world.world().barrier();
    return 0;
  });
}

// As above, with the peer watch a tool main has (run_mpi_tool): rank 0, waiting in the barrier,
// learns of rank 1's failure from its failure notice at once, not from the world's abort after rank
// 1's 2 s hold, and prints rank 1's line for it.
TEST(MpiToolChild, DISABLED_FailureNoticeEndsThePeersWait) {
  run_on_every_rank("t6_test_tool", [] {
    auto world = make_mpi_process_grid(1);
    start_peer_watch();
    if (world.world_rank() == 1) fail("deliberate failure on rank 1");
    const auto waiting = std::chrono::steady_clock::now();
    try {
      world.world().barrier();
    } catch (const RankError& error) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - waiting).count();
      std::fprintf(stderr, "rank 0 learnt of rank %d's failure after %s\n", error.rank(), seconds < 1 ? "< 1 s" : "longer");
      throw;
    }
    return 0;
  });
}

// Every rank finds the same bad input (a config error, say): one line, from rank 0.
TEST(MpiToolChild, DISABLED_EveryRankFailsTheSame) {
  run_on_every_rank("t6_test_tool", [] {
    auto world = make_mpi_process_grid(1);
    fail("the same failure on every rank");
    return 0;
  });
}

namespace {

struct ChildRun {
  int exit_status;
  std::string output;
};

// Runs command through the shell, capturing stdout and stderr.
ChildRun run_child(const std::string& command) {
  ChildRun run{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return run;
  char chunk[4096];
  while (size_t read = std::fread(chunk, 1, sizeof(chunk), pipe)) run.output.append(chunk, read);
  const int status = pclose(pipe);
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace

// Runs MpiToolChild.DISABLED_<child> under mpirun -np 2 and returns its error lines.
std::vector<std::string> child_error_lines(const std::string& child_test) {
  // The child job must not inherit this job's Open MPI/PMIx identity, so it starts from a clean
  // environment; `timeout` turns a hang into exit status 124.
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command =
      "env -i PATH=\"" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin") +
      "\" HOME=/tmp OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 30 " + t6::testing::mpiexec() +
      " -np 2 --oversubscribe " + self + " --gtest_also_run_disabled_tests --gtest_filter=MpiToolChild.DISABLED_" +
      child_test;
  const ChildRun child = run_child(command);
  EXPECT_NE(child.exit_status, 0) << child.output;
  EXPECT_NE(child.exit_status, 124) << "the job hung until timeout killed it:\n" << child.output;
  std::vector<std::string> error_lines;
  std::istringstream lines(child.output);
  for (std::string line; std::getline(lines, line);)
    if (line.find("t6_test_tool: error:") != std::string::npos || line.find(" learnt of ") != std::string::npos)
      error_lines.push_back(line);
  return error_lines;
}

TEST(RunMpiTool, OneFailingRankEndsTheJobWithOneErrorLine) {
  if (t6::testing::world_rank() == 0) {
    EXPECT_EQ(child_error_lines("FailingRankAbortsTheWorld"),
              std::vector<std::string>{"rank 1: t6_test_tool: error: deliberate failure on rank 1"});
  }
  EXPECT_TRUE(t6::testing::all_ranks_agree(true));
}

TEST(RunMpiTool, AFailureNoticeEndsThePeersWaitAndRankZeroPrintsTheFailingRanksLine) {
  if (t6::testing::world_rank() == 0) {
    EXPECT_EQ(child_error_lines("FailureNoticeEndsThePeersWait"),
              (std::vector<std::string>{"rank 0 learnt of rank 1's failure after < 1 s",
                                        "rank 1: t6_test_tool: error: deliberate failure on rank 1"}));
  }
  EXPECT_TRUE(t6::testing::all_ranks_agree(true));
}

TEST(RunMpiTool, AnErrorOfEveryRankIsPrintedOnceByRankZero) {
  if (t6::testing::world_rank() == 0) {
    EXPECT_EQ(child_error_lines("EveryRankFailsTheSame"),
              std::vector<std::string>{"rank 0: t6_test_tool: error: the same failure on every rank"});
  }
  EXPECT_TRUE(t6::testing::all_ranks_agree(true));
}

TEST(RankZeroLog, OnlyWorldRankZeroPrints) {
  ::testing::internal::CaptureStdout();
  log_info("step ", 3, " loss ", 2.5);
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(printed, t6::testing::world_rank() == 0 ? "step 3 loss 2.5\n" : "");
}
