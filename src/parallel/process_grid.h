// ProcessGrid: the world split into tensor-parallel (TP) groups of consecutive ranks, which share a
// node, and data-parallel (DP) groups striding across them (DESIGN.md "Parallelism"):
//   tp_rank = world_rank % tp,  dp_rank = world_rank / tp.
// With 4 ranks and tp 2: TP groups {0,1} {2,3}, DP groups {0,2} {1,3}.
#pragma once
#include <memory>

#include "parallel/communicator.h"
#include "parallel/timed_communicator.h"

namespace t6 {

class ProcessGrid {
 public:
  // Splits world (collective over it). local_rank is this rank's index among the ranks on its node,
  // which picks its GPU. A tp that does not divide the world size is an error on every rank, naming the sizes that would fit. Every
  // collective on world, tp and dp is timed (communication_seconds()).
  ProcessGrid(std::unique_ptr<Communicator> world, int64_t tp, int local_rank);

  Communicator& world() const { return *world_; }
  Communicator& tp() const { return *tp_; }
  Communicator& dp() const { return *dp_; }

  int world_rank() const { return world_->rank(); }
  int world_size() const { return world_->size(); }
  int tp_rank() const { return tp_->rank(); }
  int tp_size() const { return tp_->size(); }
  int dp_rank() const { return dp_->rank(); }
  int dp_size() const { return dp_->size(); }
  int local_rank() const { return local_rank_; }
  // Seconds this rank has spent in collectives of world, tp and dp since the grid was made.
  double communication_seconds() const { return clock_->seconds; }
  // `communicator` timed on this grid's clock (the device communicators of a run).
  std::unique_ptr<Communicator> timed(std::unique_ptr<Communicator> communicator) const {
    return std::make_unique<TimedCommunicator>(std::move(communicator), clock_);
  }

 private:
  std::shared_ptr<CommunicationClock> clock_;
  std::unique_ptr<Communicator> world_;
  std::unique_ptr<Communicator> tp_;
  std::unique_ptr<Communicator> dp_;
  int local_rank_;
};

// The split colours of world rank `rank`'s TP and DP groups (the key is the world rank), shared by
// the grid and by the NCCL communicators that mirror it (device_communicators.h).
inline int tp_group_color(int rank, int64_t tp) { return int(rank / tp); }
inline int dp_group_color(int rank, int64_t tp) { return int(rank % tp); }

// The grid over MPI_COMM_WORLD with MPI communicators and the node-local rank from MPI.
ProcessGrid make_mpi_process_grid(int64_t tp);

// Throws naming parallel.tp and the valid values unless tp divides the world size (ProcessGrid's
// check, also run by the plan of a world that is not started).
void check_tp_fits_world(int64_t tp, int64_t world_size);

}  // namespace t6
