// The CPU-only build's answers; the CUDA build takes them from kernels/cuda/device.cu instead.
#ifndef T6_WITH_CUDA
#include "kernels/device.h"

#include "core/error.h"

namespace t6 {

bool build_has_cuda() { return false; }

int cuda_device_count() { return 0; }

CudaDeviceInfo cuda_device_info(int device) {
  fail(str("CUDA device ", device, ": this t6 was built without CUDA (configure with -DT6_CUDA=ON)"));
}

size_t cuda_free_bytes() { fail("device memory: this t6 was built without CUDA (configure with -DT6_CUDA=ON)"); }

size_t cuda_workspace_bytes() { return 0; }

void cuda_select_device(int device) { cuda_device_info(device); }

}  // namespace t6
#endif
