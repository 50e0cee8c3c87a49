// The NCCL communicator of a whole world, for builds with and without NCCL: a CUDA build (real or
// emulated) makes one (parallel/cuda/nccl_world.cpp), a CPU-only build refuses with one line
// saying that it has no NCCL (nccl_world_cpu_only.cpp).
#pragma once
#include <memory>

#include "parallel/communicator.h"

namespace t6 {

// Collective over bootstrap (a host-buffer communicator: the unique id travels over it). The
// collectives run on a stream of their own, ordered by events against the stream the calling
// thread's CUDA ops launch on (kernels/cuda/cuda_context.h), on cuda_device.
std::unique_ptr<Communicator> make_nccl_world(Communicator& bootstrap, int cuda_device);

}  // namespace t6
