#include "kernels/cuda/cuda_context.h"

#include "core/cuda/cuda_check.h"
#include "core/error.h"

namespace t6::ops::cuda {

CudaContext::CudaContext() {
  T6_CUDA_CHECK(cudaStreamCreateWithFlags(&owned_stream_, cudaStreamNonBlocking));
  stream_ = owned_stream_;
  T6_CUBLAS_CHECK(cublasLtCreate(&blas_));
  T6_CUDA_CHECK(cudaMalloc(&blas_workspace_, kBlasWorkspaceBytes));
  int device = 0;
  T6_CUDA_CHECK(cudaGetDevice(&device));
  T6_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device));
  T6_CUDA_CHECK(cudaDeviceGetAttribute(&shared_memory_per_block_, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
}

CudaContext::~CudaContext() {
  // At thread exit the driver may already be shutting down: errors are ignored here on purpose.
  cudaFree(scratch_);
  cudaFree(blas_workspace_);
  cublasLtDestroy(blas_);
  cudaStreamDestroy(owned_stream_);
}

void* CudaContext::scratch(size_t bytes) {
  if (bytes > scratch_bytes_) {
    T6_CHECK(!scratch_planned_, "CUDA scratch: an op needs ", bytes, " bytes, but ", scratch_bytes_,
             " were reserved before the first step (CudaContext::reserve_scratch; kernels/cuda/scratch_needs.h)");
    grow_scratch(bytes + bytes / 4);
  }
  return scratch_;
}

void CudaContext::reserve_scratch(size_t bytes) {
  if (bytes > scratch_bytes_) grow_scratch(bytes);
  scratch_planned_ = true;
}

void CudaContext::grow_scratch(size_t bytes) {
  T6_CUDA_CHECK(cudaStreamSynchronize(stream_));  // kernels may still read the old buffer
  T6_CUDA_CHECK(cudaFree(scratch_));
  scratch_ = nullptr;
  scratch_bytes_ = 0;
  T6_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
  scratch_bytes_ = bytes;
}

CudaContext& cuda_context() {
  thread_local CudaContext context;
  return context;
}

}  // namespace t6::ops::cuda
