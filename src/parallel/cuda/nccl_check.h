// T6_NCCL_CHECK / T6_CUDA_CHECK: turn a failed NCCL or CUDA runtime call into a t6::Error naming the
// call, the file and line, and the library's description of the error.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "core/error.h"

namespace t6 {

[[noreturn]] inline void fail_library_call(const char* call, const char* file, int line, const char* description) {
  const std::string call_text = call;
  fail(str(call_text.substr(0, call_text.find('(')), " failed at ", file, ":", line, ": ", description));
}

}  // namespace t6

#define T6_NCCL_CHECK(call)                                                                          \
  do {                                                                                               \
    const ncclResult_t t6_nccl_result = (call);                                                      \
    if (t6_nccl_result != ncclSuccess)                                                               \
      ::t6::fail_library_call(#call, __FILE__, __LINE__, ncclGetErrorString(t6_nccl_result));        \
  } while (0)

#define T6_CUDA_CHECK(call)                                                                          \
  do {                                                                                               \
    const cudaError_t t6_cuda_error = (call);                                                        \
    if (t6_cuda_error != cudaSuccess)                                                                \
      ::t6::fail_library_call(#call, __FILE__, __LINE__, cudaGetErrorString(t6_cuda_error));         \
  } while (0)
