#include "common/mpi_environment.h"

#include <gtest/gtest.h>
#include "core/mpi_c.h"

#include <cstdio>
#include <cstdlib>

namespace t6::testing {

namespace {

// Reports failures with the rank that saw them and ends the job on a fatal one.
class RankFailureListener : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailureListener(bool print_failures) : print_failures_(print_failures) {}

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    if (print_failures_) {
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", world_rank(), result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.message());
    }
    if (result.fatally_failed() && world_size() > 1) {
      std::fprintf(stderr, "[rank %d] fatal test failure: aborting all ranks so none waits in a collective\n",
                   world_rank());
      std::fflush(stderr);
      std::fflush(stdout);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }

 private:
  bool print_failures_;
};

class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      std::fprintf(stderr, "MPI_Init_thread failed\n");
      std::abort();
    }
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    const bool quiet_rank = world_rank() != 0;
    // Rank 0 keeps gtest's printer, which already prints its failures; other ranks print only theirs.
    if (quiet_rank) delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailureListener(/*print_failures=*/quiet_rank));
  }

  void TearDown() override { MPI_Finalize(); }
};

}  // namespace

bool register_mpi_environment() {
  ::testing::AddGlobalTestEnvironment(new MpiEnvironment);
  return true;
}

bool all_ranks_agree(bool condition) {
  int local = condition ? 1 : 0, everywhere = 0;
  MPI_Allreduce(&local, &everywhere, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return everywhere == 1;
}

}  // namespace t6::testing
