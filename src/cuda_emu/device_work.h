// The emulated GPU's internal seam between its runtime (memory, streams, events, cuBLASLt, NCCL)
// and its kernel executor (fibers, barriers, warp collectives, WMMA). Nothing outside src/cuda_emu
// includes this header.
//
// Device work is anything that runs "on the GPU": a kernel grid, a copy, a memset, a cuBLASLt matmul,
// a collective. It is queued on a stream and runs on the host thread that reaches a synchronisation
// point (cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize, a synchronous copy, an
// NCCL call), with device memory readable and writable only while it runs. So a host read of a
// device pointer, or of a result whose stream was never synchronised, fails as it would on a GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>

namespace t6::cuda_emu {

// Thrown inside device work when it fails (a deadlocked kernel, a misused collective): the
// synchronisation that ran it returns cudaErrorLaunchFailure, and cudaGetErrorString of that code
// gives this message, which names the kernel, the block and the threads.
struct DeviceFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Queues `work` on `stream` (0 and cudaStreamLegacy: the legacy stream; cudaStreamPerThread is
// treated as the legacy stream). `what` names it in error messages.
void enqueue(cudaStream_t stream, std::string what, std::function<void()> work);

// Runs every item queued on `stream` so far, in order, now (NCCL calls flush their stream at once:
// lazy execution could deadlock against host-side MPI).
cudaError_t flush(cudaStream_t stream);

// Records a launch error for cudaGetLastError / cudaPeekAtLastError (a bad launch configuration is
// reported at the launch, as on a GPU).
void set_launch_error(cudaError_t error, std::string message);

// The dynamic shared memory a kernel may use: 48 KiB unless cudaFuncSetAttribute raised it.
size_t max_dynamic_shared_bytes(const void* kernel);

// The emulated device's limits (an H100 SXM), for launch checks.
struct DeviceLimits {
  int max_threads_per_block = 1024;
  unsigned max_grid_x = 2147483647u, max_grid_y = 65535u, max_grid_z = 65535u;
  unsigned max_block_x = 1024u, max_block_y = 1024u, max_block_z = 64u;
  size_t default_dynamic_shared = 48u << 10;
  size_t max_shared_per_block_optin = 227u << 10;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
};
const DeviceLimits& device_limits();

// A malformed T6_EMU_* environment variable: one line on stderr, then exit code 2. It is a
// configuration error of the whole run, not "no GPU"; and _Exit, because exit's destructors free
// device memory, which runs queued work, which may read the very setting again.
[[noreturn]] void refuse_environment_setting(const char* name, const char* value, const char* expected);

}  // namespace t6::cuda_emu
