// The CPU-only build has no NCCL; a CUDA build takes parallel/cuda/nccl_world.cpp instead.
#ifndef T6_WITH_CUDA
#include "parallel/nccl_world.h"

#include "core/error.h"

namespace t6 {

std::unique_ptr<Communicator> make_nccl_world(Communicator&, int) {
  fail("parallel.communicator = \"nccl\": this t6 was built without CUDA and NCCL (configure with -DT6_CUDA=ON), "
       "or set parallel.communicator = \"mpi\"");
}

}  // namespace t6
#endif
