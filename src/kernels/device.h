// Which accelerators this process can use. Without a CUDA build these report none, so code (and
// GPU tests, which GTEST_SKIP) can ask the same question everywhere.
#pragma once
#include <cstddef>
#include <string>

namespace t6 {

bool build_has_cuda();            // compiled with T6_CUDA
int cuda_device_count();          // 0 without CUDA, without a driver or without a device

struct CudaDeviceInfo {
  std::string name;               // "NVIDIA H200"
  size_t total_bytes = 0;         // device memory
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
};
// Throws naming the device when it does not exist (or the build has no CUDA).
CudaDeviceInfo cuda_device_info(int device);
// Free memory of the current device (cudaMemGetInfo); throws without CUDA.
size_t cuda_free_bytes();
// Device memory the CUDA ops hold besides the arenas (the cuBLASLt workspace); 0 without CUDA.
size_t cuda_workspace_bytes();
// Makes `device` current for the calling thread (cudaSetDevice); throws like cuda_device_info.
void cuda_select_device(int device);

}  // namespace t6
