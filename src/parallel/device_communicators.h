// The communicators that carry a run's device buffers: the model's TP reductions and the
// optimizer's DP ones. With the MPI communicator they are the grid's own, which stage device
// buffers through pinned host memory (so that ranks may share a GPU); with NCCL they are NCCL
// communicators over the same groups: a world whose unique id travels over the grid's world,
// split into TP and DP groups as ProcessGrid splits it, each timed on the grid's clock. Host values
// (the loss, the gradient norm, stop requests) always travel over the grid's communicators.
#pragma once
#include <memory>
#include <vector>

#include "parallel/backend_choice.h"
#include "parallel/process_grid.h"

namespace t6 {

class DeviceCommunicators {
 public:
  // Collective over the grid's world when backend.communicator is NCCL.
  DeviceCommunicators(ProcessGrid& grid, const BackendChoice& backend);

  Communicator& world() const { return *world_; }
  Communicator& tp() const { return *tp_; }
  Communicator& dp() const { return *dp_; }
  // Those whose collectives the host does not wait in (NCCL's), for CollectiveWatchdog; none with MPI.
  std::vector<Communicator*> watched() const;

 private:
  std::unique_ptr<Communicator> own_world_, own_tp_, own_dp_;  // NCCL's; null with MPI
  Communicator *world_, *tp_, *dp_;
};

}  // namespace t6
