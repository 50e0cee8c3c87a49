// T6_NCCL_CHECK: turn a failed NCCL call into a t6::Error naming the call, the file and line, and
// NCCL's description of the error (T6_CUDA_CHECK comes from core/cuda/cuda_check.h).
#pragma once
#include <nccl.h>

#include "core/cuda/cuda_check.h"

#define T6_NCCL_CHECK(call)                                                                          \
  do {                                                                                               \
    const ncclResult_t t6_nccl_result = (call);                                                      \
    if (t6_nccl_result != ncclSuccess)                                                               \
      ::t6::fail_library_call(#call, __FILE__, __LINE__, ncclGetErrorString(t6_nccl_result));        \
  } while (0)
