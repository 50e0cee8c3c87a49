#include "parallel/nccl_world.h"

#include "kernels/cuda/cuda_context.h"
#include "parallel/cuda/nccl_communicator.h"

namespace t6 {

std::unique_ptr<Communicator> make_nccl_world(Communicator& bootstrap, int cuda_device) {
  return std::make_unique<NcclCommunicator>(bootstrap, cuda_device, ops::cuda::cuda_context().stream());
}

}  // namespace t6
