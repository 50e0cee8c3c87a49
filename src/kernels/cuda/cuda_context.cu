#include "kernels/cuda/cuda_context.h"

#include "core/cuda/cuda_check.h"

namespace t6::ops::cuda {

CudaContext::CudaContext() {
  T6_CUDA_CHECK(cudaStreamCreateWithFlags(&owned_stream_, cudaStreamNonBlocking));
  stream_ = owned_stream_;
  T6_CUBLAS_CHECK(cublasLtCreate(&blas_));
  T6_CUDA_CHECK(cudaMalloc(&blas_workspace_, kBlasWorkspaceBytes));
  int device = 0;
  T6_CUDA_CHECK(cudaGetDevice(&device));
  T6_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device));
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
    T6_CUDA_CHECK(cudaStreamSynchronize(stream_));  // kernels may still read the old buffer
    T6_CUDA_CHECK(cudaFree(scratch_));
    scratch_ = nullptr;
    const size_t grown = bytes + bytes / 4;
    T6_CUDA_CHECK(cudaMalloc(&scratch_, grown));
    scratch_bytes_ = grown;
  }
  return scratch_;
}

CudaContext& cuda_context() {
  thread_local CudaContext context;
  return context;
}

}  // namespace t6::ops::cuda
