#include <cuda_runtime.h>

#include "kernels/device.h"

namespace t6 {

int cuda_device_count() {
  int count = 0;
  // No driver or no device is not an error here: callers fall back to the CPU or skip.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace t6
