// The emulated GPU's kernel executor, as the kernel-side headers (cuda_emu_kernel.h, mma.h, the PTX
// twins) see it: the calling CUDA thread's built-in variables, the block barrier, and warp
// collectives. Every CUDA thread of a block runs in its own fiber, and the blocks of a grid run one
// after another on the host thread that executes the launch, so barriers and collectives park the
// fiber until every participant has arrived. One that never arrives is a DeviceFault naming the
// kernel, block and threads, never a hang.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>

namespace t6::cuda_emu {

struct LaunchShape {
  const char* kernel_name;
  dim3 grid, block;
  size_t dynamic_shared_bytes;
};

// A kernel launch: checked as the GPU checks it (threads per block, block and grid dimensions,
// dynamic shared memory against the kernel's attribute; a refused launch sets the launch error and
// queues nothing), then queued on `stream`. When the stream runs it, every block of the grid runs in
// the order T6_EMU_ORDER chooses, each thread in its own fiber running `thread_body`; a deadlock or
// a misused collective is a DeviceFault.
void launch_grid(const LaunchShape& shape, const void* kernel, cudaStream_t stream, std::function<void()> thread_body);

// The calling CUDA thread's built-ins.
struct ThreadBuiltins {
  uint3 thread_index, block_index;
  dim3 block_dim, grid_dim;
  char* dynamic_shared;
};
const ThreadBuiltins& builtins();

// __syncthreads: parks until every thread of the block has arrived.
void sync_threads();

// A warp collective: parks the calling lane until every lane of `mask` has arrived at a collective;
// all must name the same operation with the same mask and the same `agreement` words (the pointer,
// ldm and layout of a WMMA load, say), else it is a DeviceFault. Then `combine` runs once with the
// 32 lanes' payloads (nullptr for lanes outside the mask), and every lane continues.
struct WarpCollective {
  const char* operation;
  unsigned mask;
  uint64_t agreement[3];
  void* payload;
  void (*combine)(void* const payloads[32]);
  // Whether it orders the lanes' memory accesses (race mode): CUDA documents that of __syncwarp
  // only, not of shuffles, votes or WMMA, although they converge the warp.
  bool orders_memory = false;
};
void warp_collective(const WarpCollective& collective);
int lane_id();

}  // namespace t6::cuda_emu
