// What the emulated device says it is: an H100 SXM (compute capability 9.0, 132 SMs, 228 KiB of
// shared memory per SM, 227 KiB per block with the opt-in attribute, 48 KiB without, 80 GiB), and the
// per-kernel dynamic shared memory limit that cudaFuncSetAttribute raises.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "cuda_emu/runtime_state.h"

namespace t6::cuda_emu {

namespace {

constexpr int kMultiprocessors = 132;
constexpr size_t kSharedPerMultiprocessor = size_t(228) << 10;
constexpr int kMaxThreadsPerMultiprocessor = 2048;
constexpr int kRegistersPer = 65536;  // per block and per SM
constexpr int kL2CacheBytes = 50 << 20;

std::map<const void*, size_t>& kernel_dynamic_shared() {
  static auto* limits = new std::map<const void*, size_t>();
  return *limits;
}

}  // namespace

const DeviceLimits& device_limits() {
  static const DeviceLimits limits;
  return limits;
}

size_t max_dynamic_shared_bytes(const void* kernel) {
  RuntimeLock lock(runtime_mutex());
  const auto found = kernel_dynamic_shared().find(kernel);
  return found == kernel_dynamic_shared().end() ? device_limits().default_dynamic_shared : found->second;
}

}  // namespace t6::cuda_emu

using namespace t6::cuda_emu;

extern "C" {

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (!properties) return api_error(cudaErrorInvalidValue, "cudaGetDeviceProperties: properties is null");
  if (const cudaError_t error = check_device("cudaGetDeviceProperties", device)) return error;
  const DeviceLimits& limits = device_limits();
  cudaDeviceProp p;
  std::memset(&p, 0, sizeof p);
  std::snprintf(p.name, sizeof p.name, "NVIDIA H100 80GB HBM3 (t6 emulated)");
  p.totalGlobalMem = kDeviceMemoryBytes;
  p.sharedMemPerBlock = limits.default_dynamic_shared;
  p.sharedMemPerBlockOptin = limits.max_shared_per_block_optin;
  p.sharedMemPerMultiprocessor = kSharedPerMultiprocessor;
  p.reservedSharedMemPerBlock = 1024;
  p.regsPerBlock = kRegistersPer;
  p.regsPerMultiprocessor = kRegistersPer;
  p.warpSize = 32;
  p.maxThreadsPerBlock = limits.max_threads_per_block;
  p.maxThreadsDim[0] = int(limits.max_block_x);
  p.maxThreadsDim[1] = int(limits.max_block_y);
  p.maxThreadsDim[2] = int(limits.max_block_z);
  p.maxGridSize[0] = int(limits.max_grid_x);
  p.maxGridSize[1] = int(limits.max_grid_y);
  p.maxGridSize[2] = int(limits.max_grid_z);
  p.totalConstMem = 64 << 10;
  p.major = 9;
  p.minor = 0;
  p.multiProcessorCount = kMultiprocessors;
  p.maxThreadsPerMultiProcessor = kMaxThreadsPerMultiprocessor;
  p.maxBlocksPerMultiProcessor = 32;
  p.l2CacheSize = kL2CacheBytes;
  p.memoryBusWidth = 5120;
  p.concurrentKernels = 1;
  p.asyncEngineCount = 3;
  p.unifiedAddressing = 1;
  p.canMapHostMemory = 1;
  p.cooperativeLaunch = 1;
  p.memPitch = 2147483647;
  p.textureAlignment = 512;
  p.texturePitchAlignment = 32;
  p.pciBusID = device;
  *properties = p;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (!value) return api_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: value is null");
  if (const cudaError_t error = check_device("cudaDeviceGetAttribute", device)) return error;
  const DeviceLimits& limits = device_limits();
  switch (attribute) {
    case cudaDevAttrMaxThreadsPerBlock: *value = limits.max_threads_per_block; break;
    case cudaDevAttrMaxBlockDimX: *value = int(limits.max_block_x); break;
    case cudaDevAttrMaxBlockDimY: *value = int(limits.max_block_y); break;
    case cudaDevAttrMaxBlockDimZ: *value = int(limits.max_block_z); break;
    case cudaDevAttrMaxGridDimX: *value = int(limits.max_grid_x); break;
    case cudaDevAttrMaxGridDimY: *value = int(limits.max_grid_y); break;
    case cudaDevAttrMaxGridDimZ: *value = int(limits.max_grid_z); break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(limits.default_dynamic_shared); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(limits.max_shared_per_block_optin); break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(kSharedPerMultiprocessor); break;
    case cudaDevAttrTotalConstantMemory: *value = 64 << 10; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMaxRegistersPerBlock:
    case cudaDevAttrMaxRegistersPerMultiprocessor: *value = kRegistersPer; break;
    case cudaDevAttrMultiProcessorCount: *value = kMultiprocessors; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = kMaxThreadsPerMultiprocessor; break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: *value = 32; break;
    case cudaDevAttrL2CacheSize: *value = kL2CacheBytes; break;
    case cudaDevAttrGlobalMemoryBusWidth: *value = 5120; break;
    case cudaDevAttrConcurrentKernels:
    case cudaDevAttrUnifiedAddressing:
    case cudaDevAttrCanMapHostMemory:
    case cudaDevAttrCooperativeLaunch: *value = 1; break;
    case cudaDevAttrAsyncEngineCount: *value = 3; break;
    case cudaDevAttrIntegrated:
    case cudaDevAttrManagedMemory:
    case cudaDevAttrPageableMemoryAccess: *value = 0; break;
    default:
      return api_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " + std::to_string(int(attribute)) +
                                                  " is not emulated");
  }
  return cudaSuccess;
}

// The C form (the template taking a kernel exists only under nvcc). Only the dynamic shared memory
// limit changes what the emulation does; the carveout is accepted and ignored.
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  RuntimeLock lock(runtime_mutex());
  if (!kernel) return api_error(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: the kernel is null");
  switch (attribute) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize: {
      const size_t optin = device_limits().max_shared_per_block_optin;
      if (value < 0 || size_t(value) > optin)
        return api_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: cudaFuncAttributeMaxDynamicSharedMemorySize " +
                                                    std::to_string(value) + " bytes is outside 0.." +
                                                    std::to_string(optin) + " (227 KiB per block on an H100)");
      kernel_dynamic_shared()[kernel] = size_t(value);
      return cudaSuccess;
    }
    case cudaFuncAttributePreferredSharedMemoryCarveout:
      if (value < -1 || value > 100)
        return api_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: carveout " + std::to_string(value) +
                                                    " is not a percentage (or -1)");
      return cudaSuccess;
    default:
      return api_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute " + std::to_string(int(attribute)) +
                                                  " is not emulated");
  }
}

}  // extern "C"
