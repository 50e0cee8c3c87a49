// T6_LAUNCH(kernel, grid, block, shared_bytes, stream)(arguments...): the one way t6 launches a
// kernel. Under nvcc it is kernel<<<grid, block, shared_bytes, stream>>>(arguments...); in the
// emulated build (T6_CUDA_EMU) the same line queues the grid on the emulated GPU.
// T6_LAUNCH_AS(kernel, name, ...) launches a kernel held in a variable, naming it for the
// emulation's messages.
#pragma once

#ifdef T6_CUDA_EMU
#include "cuda_emu_launch.h"
#define T6_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  T6_LAUNCH_AS(kernel, #kernel, grid, block, shared_bytes, stream)
#define T6_LAUNCH_AS(kernel, name, grid, block, shared_bytes, stream) \
  ::t6::cuda_emu::KernelLaunch(kernel, name, dim3(grid), dim3(block), size_t(shared_bytes), stream)
#else
#define T6_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#define T6_LAUNCH_AS(kernel, name, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#endif
