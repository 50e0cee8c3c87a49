// Error reporting of the emulated runtime: cudaGetLastError / cudaPeekAtLastError, the names and
// descriptions of error codes, launch errors, and the sticky launch failure a DeviceFault leaves.
// A failed call's description names the call and what was wrong, so T6_CUDA_CHECK prints one line
// that says it all (the real runtime's descriptions are generic; its codes and names are kept).
#include <array>
#include <string>

#include "cuda_emu/runtime_state.h"

namespace t6::cuda_emu {

namespace {

struct CodeText {
  cudaError_t code;
  const char* name;
  const char* description;  // the real runtime's wording
};

constexpr CodeText kCodes[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources", "too many resources requested for launch"},
    {cudaErrorLaunchTimeout, "cudaErrorLaunchTimeout", "the launch timed out and was terminated"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const CodeText* find_code(cudaError_t code) {
  for (const CodeText& text : kCodes)
    if (text.code == code) return &text;
  return nullptr;
}

// The last failure of a call on this thread, with the description that names the call.
struct ThreadErrors {
  cudaError_t last = cudaSuccess;
  cudaError_t described = cudaSuccess;
  std::string description;
};
thread_local ThreadErrors thread_errors;

std::array<std::string, kMaxEmulatedDevices>& sticky_faults() {
  static auto* faults = new std::array<std::string, kMaxEmulatedDevices>();  // never destroyed: used at exit
  return *faults;
}

}  // namespace

cudaError_t api_error(cudaError_t code, std::string message) {
  const CodeText* text = find_code(code);
  thread_errors.last = code;
  thread_errors.described = code;
  thread_errors.description = message + " (" + (text ? text->description : "error") + ")";
  return code;
}

cudaError_t sticky_error(int device) {
  RuntimeLock lock(runtime_mutex());
  return sticky_faults()[size_t(device)].empty() ? cudaSuccess : cudaErrorLaunchFailure;
}

void set_sticky_fault(int device, std::string message) {
  RuntimeLock lock(runtime_mutex());
  std::string& fault = sticky_faults()[size_t(device)];
  if (fault.empty()) fault = "unspecified launch failure: " + message;  // the first fault is the cause
}

void clear_sticky_fault(int device) {
  RuntimeLock lock(runtime_mutex());
  sticky_faults()[size_t(device)].clear();
}

void set_launch_error(cudaError_t error, std::string message) { api_error(error, std::move(message)); }

}  // namespace t6::cuda_emu

using namespace t6::cuda_emu;

extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t sticky = sticky_error(current_device());
  if (sticky != cudaSuccess) return sticky;
  const cudaError_t last = thread_errors.last;
  thread_errors.last = cudaSuccess;
  return last;
}

cudaError_t cudaPeekAtLastError(void) {
  const cudaError_t sticky = sticky_error(current_device());
  return sticky != cudaSuccess ? sticky : thread_errors.last;
}

const char* cudaGetErrorName(cudaError_t error) {
  const CodeText* text = find_code(error);
  return text ? text->name : "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  if (error == cudaErrorLaunchFailure) {
    RuntimeLock lock(runtime_mutex());
    for (const std::string& fault : sticky_faults())
      if (!fault.empty()) return fault.c_str();
  }
  if (error != cudaSuccess && error == thread_errors.described) return thread_errors.description.c_str();
  const CodeText* text = find_code(error);
  return text ? text->description : "unrecognized error code";
}

}  // extern "C"
