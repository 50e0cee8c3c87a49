#include "parallel/process_grid.h"

#include <string>

#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"

namespace t6 {

namespace {

// "1, 2, 4": the tensor-parallel sizes that fit a world of `world_size` ranks.
std::string divisors_of(int world_size) {
  std::string text;
  for (int d = 1; d <= world_size; ++d)
    if (world_size % d == 0) text += (text.empty() ? "" : ", ") + std::to_string(d);
  return text;
}

}  // namespace

void check_tp_fits_world(int64_t tp, int64_t world_size) {
  T6_CHECK(tp >= 1 && world_size % tp == 0, "parallel.tp = ", tp, " does not fit the world of ", world_size,
           " ranks: it must divide the world size (valid: ", divisors_of(int(world_size)), ")");
}

ProcessGrid::ProcessGrid(std::unique_ptr<Communicator> world, int64_t tp, int local_rank)
    : clock_(std::make_shared<CommunicationClock>()),
      world_(std::make_unique<TimedCommunicator>(std::move(world), clock_)),
      local_rank_(local_rank) {
  // Every rank sees the same sizes, so every rank fails here alike and none waits in a split.
  check_tp_fits_world(tp, world_->size());
  const int rank = world_->rank();
  tp_ = world_->split(tp_group_color(rank, tp), /*key=*/rank);
  dp_ = world_->split(dp_group_color(rank, tp), /*key=*/rank);
}

ProcessGrid make_mpi_process_grid(int64_t tp) { return ProcessGrid(make_mpi_world_communicator(), tp, node_placement().local_rank); }

}  // namespace t6
