#include "parallel/process_grid.h"

#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"

namespace t6 {

ProcessGrid::ProcessGrid(std::unique_ptr<Communicator> world, int tp, int local_rank)
    : clock_(std::make_shared<CommunicationClock>()),
      world_(std::make_unique<TimedCommunicator>(std::move(world), clock_)),
      local_rank_(local_rank) {
  T6_CHECK(tp >= 1, "tensor-parallel size must be at least 1, got ", tp);
  // Every rank sees the same sizes, so every rank fails here alike and none waits in a split.
  T6_CHECK(world_->size() % tp == 0, "world size ", world_->size(), " does not divide into tensor-parallel groups of ",
           tp);
  const int rank = world_->rank();
  tp_ = world_->split(/*color=*/rank / tp, /*key=*/rank);
  dp_ = world_->split(/*color=*/rank % tp, /*key=*/rank);
}

ProcessGrid make_mpi_process_grid(int tp) { return ProcessGrid(make_mpi_world_communicator(), tp, node_placement().local_rank); }

}  // namespace t6
