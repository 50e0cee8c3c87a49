// The state the CUDA ops share on one host thread: the stream they launch on, the cuBLASLt handle
// and its workspace, and a scratch buffer for ops that need temporary device memory (sorting token
// ids, reduction partials). Per thread, so that two threads never share a stream by accident; made
// on the thread's first CUDA op, on the device current then (one rank per GPU: the rank's device).
// Scratch grows only when an op first needs more (at the first step), never in a steady step.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace t6::ops::cuda {

class CudaContext {
 public:
  CudaContext();
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  cudaStream_t stream() const { return stream_; }
  // Launch on another stream from now on (e.g. the trainer's compute stream); not owned.
  void use_stream(cudaStream_t stream) { stream_ = stream; }
  cublasLtHandle_t blas() const { return blas_; }
  void* blas_workspace() const { return blas_workspace_; }
  static constexpr size_t kBlasWorkspaceBytes = size_t(32) << 20;  // what cuBLASLt asks for on Hopper
  // At least `bytes` of device memory, valid until the next scratch() call that needs more. Ops on
  // this stream are ordered, so one op's scratch is free again when the next op runs.
  void* scratch(size_t bytes);
  int multiprocessors() const { return multiprocessors_; }

 private:
  cudaStream_t owned_stream_ = nullptr, stream_ = nullptr;
  cublasLtHandle_t blas_ = nullptr;
  void* blas_workspace_ = nullptr;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  int multiprocessors_ = 0;
};

CudaContext& cuda_context();

}  // namespace t6::ops::cuda
