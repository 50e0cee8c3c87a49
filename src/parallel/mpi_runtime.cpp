#include "parallel/mpi_runtime.h"

#include "core/log.h"
#include "core/mpi_c.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "core/error.h"
#include "parallel/collective_deadline.h"
#include "parallel/mpi_check.h"
#include "parallel/peer_watch.h"
#include "parallel/rank_failure.h"

namespace t6 {

namespace {

// A multi-line message would break the "one line per failure" promise to users and scripts.
std::string one_line(std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message;
}

// Under mpirun each error is printed once. Most errors (a bad config, a missing corpus) are found by
// every rank at once: rank 0 prints and aborts the world at once, and the others hold their line
// for a moment, in which rank 0's abort ends them. An error only one rank finds is printed by it
// after that moment.
constexpr unsigned kOtherRanksHoldSeconds = 2;
constexpr unsigned kAbortWaitSeconds = 3;

// `origin` is the rank whose failure this is (another one when this rank learnt it from a failure
// notice or an agreement, rank_failure.h), `message` its error.
int report_failure_and_abort(const char* tool_name, int origin, const std::string& message) {
  const int size = world_size(), rank = world_rank();
  // A failure of this rank alone: the others, perhaps waiting for it in a collective, learn it now.
  if (origin == rank) send_failure_notice(message);
  if (size > 1 && rank != 0) {
    // The world's abort arrives as SIGTERM; the trainer's stop handler must not swallow it here.
    std::signal(SIGTERM, SIG_DFL);
    std::signal(SIGINT, SIG_DFL);
    sleep(kOtherRanksHoldSeconds);
  }
  const std::string rank_prefix = size > 1 ? "rank " + std::to_string(origin) + ": " : "";
  std::fprintf(stderr, "%s%s: error: %s\n", rank_prefix.c_str(), tool_name, one_line(message).c_str());
  std::fflush(stderr);
  copy_line_to_log_file(rank_prefix + tool_name + ": error: " + one_line(message));  // RUN_DIR/console.log
  if (size > 1) {
    // MPI_Abort asks the launcher to end the job and waits for its answer; a launcher that is busy
    // ending the job already (Open MPI 4's mpirun sleeps through its kill grace after a rank died)
    // would hold this rank, its core and its locks that long. SIGALRM's default action ends it.
    std::signal(SIGALRM, SIG_DFL);
    alarm(kAbortWaitSeconds);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}

}  // namespace

int run_on_every_rank(const char* tool_name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const RankError& error) {
    return report_failure_and_abort(tool_name, error.rank(), error.detail());
  } catch (const std::bad_alloc&) {
    return report_failure_and_abort(tool_name, world_rank(),
                                    str(progress_label(), ": out of host memory (std::bad_alloc), beyond what start-up "
                                        "planned; free memory or run fewer ranks on this node"));
  } catch (const std::exception& error) {
    return report_failure_and_abort(tool_name, world_rank(), error.what());
  } catch (...) {
    return report_failure_and_abort(tool_name, world_rank(), "unknown exception");
  }
}

int run_mpi_tool(int argc, char** argv, const char* tool_name, const ToolBody& body) {
  int provided = MPI_THREAD_SINGLE;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "%s: error: MPI_Init_thread failed\n", tool_name);
    return 1;
  }
  const int exit_code = run_on_every_rank(tool_name, [&] {
    T6_CHECK(provided >= MPI_THREAD_FUNNELED, "this MPI library does not support MPI_THREAD_FUNNELED");
    start_peer_watch();
    return body(argc, argv);
  });
  end_peer_watch();
  MPI_Finalize();
  return exit_code;
}

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

NodePlacement node_placement() {
  MPI_Comm node = MPI_COMM_NULL;
  T6_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank(), MPI_INFO_NULL, &node));
  NodePlacement placement;
  T6_MPI_CHECK(MPI_Comm_rank(node, &placement.local_rank));
  T6_MPI_CHECK(MPI_Comm_size(node, &placement.ranks_on_node));
  T6_MPI_CHECK(MPI_Comm_free(&node));
  return placement;
}

}  // namespace t6
