// The CPU-only build's answers; the CUDA build takes them from kernels/cuda/device.cu instead.
#ifndef T6_WITH_CUDA
#include "kernels/device.h"

namespace t6 {

int cuda_device_count() { return 0; }

}  // namespace t6
#endif
