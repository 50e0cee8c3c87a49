// MPI for multi-rank GoogleTest binaries (those with a `// ctest-mpi-ranks: N` header line).
//
// Usage, once at namespace scope in the test file:
//   #include "common/mpi_environment.h"
//   T6_MPI_TEST_ENVIRONMENT();
// This registers a gtest Environment that initialises MPI before the first test and finalises it
// after the last. It also keeps a failure on one rank from hanging the others:
//   - a fatal failure (ASSERT_*, an uncaught exception) prints its message and MPI_Aborts the job,
//     since this rank will skip collectives the other ranks are waiting in;
//   - ranks other than 0 print only their failures, prefixed "[rank R]", so the log reads as one run.
// Non-fatal EXPECT_* failures let every rank continue; the failing rank's exit code fails the job.
// all_ranks_agree(ok) turns a per-rank condition into one that every rank sees the same way.
#pragma once
#include "parallel/mpi_runtime.h"

namespace t6::testing {

bool register_mpi_environment();  // what T6_MPI_TEST_ENVIRONMENT calls; returns true

// world_rank() and world_size() come from parallel/mpi_runtime.h.
using ::t6::world_rank;
using ::t6::world_size;

// Collective over MPI_COMM_WORLD: true on every rank exactly when condition is true on every rank.
bool all_ranks_agree(bool condition);

}  // namespace t6::testing

#define T6_MPI_TEST_ENVIRONMENT() \
  [[maybe_unused]] static const bool t6_mpi_test_environment_registered = ::t6::testing::register_mpi_environment()
