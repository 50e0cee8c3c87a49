#include "parallel/device_communicators.h"

#include "parallel/nccl_world.h"

namespace t6 {

DeviceCommunicators::DeviceCommunicators(ProcessGrid& grid, const BackendChoice& backend)
    : world_(&grid.world()), tp_(&grid.tp()), dp_(&grid.dp()) {
  if (backend.communicator != CommunicatorKind::nccl) return;
  own_world_ = grid.timed(make_nccl_world(grid.world(), backend.cuda_device));
  const int rank = grid.world_rank(), tp = grid.tp_size();
  own_tp_ = own_world_->split(tp_group_color(rank, tp), /*key=*/rank);
  own_dp_ = own_world_->split(dp_group_color(rank, tp), /*key=*/rank);
  world_ = own_world_.get(), tp_ = own_tp_.get(), dp_ = own_dp_.get();
}

std::vector<Communicator*> DeviceCommunicators::watched() const {
  std::vector<Communicator*> watched;
  for (Communicator* owned : {own_world_.get(), own_tp_.get(), own_dp_.get()})
    if (owned) watched.push_back(owned);
  return watched;
}

}  // namespace t6
