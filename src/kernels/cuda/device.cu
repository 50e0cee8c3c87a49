#include <cuda_runtime.h>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/device.h"

namespace t6 {

bool build_has_cuda() { return true; }

int cuda_device_count() {
  int count = 0;
  // No driver or no device is not an error here: callers fall back to the CPU or skip.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

CudaDeviceInfo cuda_device_info(int device) {
  const int count = cuda_device_count();
  T6_CHECK(device >= 0 && device < count, "CUDA device ", device, " does not exist: this process sees ", count,
           count == 1 ? " GPU" : " GPUs");
  cudaDeviceProp properties{};
  T6_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  return {properties.name, properties.totalGlobalMem, properties.major, properties.minor,
          properties.multiProcessorCount};
}

size_t cuda_free_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  T6_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

size_t cuda_workspace_bytes() { return ops::cuda::CudaContext::kBlasWorkspaceBytes; }

void cuda_select_device(int device) {
  cuda_device_info(device);
  T6_CUDA_CHECK(cudaSetDevice(device));
}

}  // namespace t6
