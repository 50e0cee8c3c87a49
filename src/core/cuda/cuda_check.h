// T6_CUDA_CHECK / T6_CUBLAS_CHECK / T6_CUDA_CHECK_LAUNCH: turn a failed CUDA runtime or cuBLASLt call
// (or kernel launch) into a t6::Error naming the call, the file and line, and the library's
// description of the error. Only for CUDA-enabled code (files under a cuda/ folder).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace t6 {

[[noreturn]] inline void fail_library_call(const char* call, const char* file, int line, const char* description) {
  const std::string call_text = call;
  fail(str(call_text.substr(0, call_text.find('(')), " failed at ", file, ":", line, ": ", description));
}

}  // namespace t6

#define T6_CUDA_CHECK(call)                                                                          \
  do {                                                                                               \
    const cudaError_t t6_cuda_error = (call);                                                        \
    if (t6_cuda_error != cudaSuccess)                                                                \
      ::t6::fail_library_call(#call, __FILE__, __LINE__, cudaGetErrorString(t6_cuda_error));         \
  } while (0)

#define T6_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                               \
    const cublasStatus_t t6_cublas_status = (call);                                                  \
    if (t6_cublas_status != CUBLAS_STATUS_SUCCESS)                                                   \
      ::t6::fail_library_call(#call, __FILE__, __LINE__, cublasLtGetStatusString(t6_cublas_status)); \
  } while (0)

// After a kernel launch: a bad configuration (too much shared memory, too many threads) shows here.
#define T6_CUDA_CHECK_LAUNCH(kernel_name)                                                            \
  do {                                                                                               \
    const cudaError_t t6_cuda_error = cudaGetLastError();                                            \
    if (t6_cuda_error != cudaSuccess)                                                                \
      ::t6::fail_library_call(kernel_name, __FILE__, __LINE__, cudaGetErrorString(t6_cuda_error));   \
  } while (0)
