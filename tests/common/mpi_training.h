// Helpers for multi-rank training tests (under mpirun): one corpus and run directories shared by
// every rank, communicators over any MPI group, and the per-step records of metrics.jsonl.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "core/mpi_c.h"

namespace t6::testing {

// Rank 0's string on every rank of MPI_COMM_WORLD (at most 511 bytes: paths).
std::string broadcast_from_rank0(std::string text);

// The Shakespeare corpus (training_setup.h), written once by rank 0; the same path on every rank.
const std::string& shared_corpus();

// A fresh directory made by rank 0, the same path on every rank.
std::string shared_run_dir(const std::string& label);

// A Communicator over a duplicate of `comm` (MPI_COMM_WORLD, or MPI_COMM_SELF for a one-rank run).
std::unique_ptr<Communicator> communicator_of(MPI_Comm comm);

// The training records of RUN_DIR/metrics.jsonl in file order (evaluation records skipped).
struct StepRecords {
  std::vector<int64_t> steps;
  std::vector<double> losses, grad_norms;
};
StepRecords read_step_records(const std::string& run_dir);

}  // namespace t6::testing
