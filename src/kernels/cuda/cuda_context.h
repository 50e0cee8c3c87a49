// The state the CUDA ops share on one host thread: the stream they launch on, the cuBLASLt handle
// and its workspace, and a scratch buffer for ops that need temporary device memory (sorting token
// ids, reduction partials). Per thread, so that two threads never share a stream by accident; made
// on the thread's first CUDA op, on the device current then (one rank per GPU: the rank's device).
// Scratch is planned: a trainer reserves the largest need of its step (kernels/cuda/scratch_needs.h)
// before the first step, and from then on an op that needs more is an error instead of a
// cudaFree/cudaMalloc (and a synchronisation) inside a step. Until something reserves, scratch
// grows on demand (tests, tools).
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
  // Allocates at least `bytes` of scratch now (outside any step) and fixes the size: a later
  // scratch() call asking for more fails, naming both sizes. Reserving again may grow it.
  void reserve_scratch(size_t bytes);
  size_t scratch_bytes() const { return scratch_bytes_; }
  int multiprocessors() const { return multiprocessors_; }
  // The dynamic shared memory a block may opt in to (227 KiB on an H100).
  int shared_memory_per_block() const { return shared_memory_per_block_; }

 private:
  void grow_scratch(size_t bytes);

  cudaStream_t owned_stream_ = nullptr, stream_ = nullptr;
  cublasLtHandle_t blas_ = nullptr;
  void* blas_workspace_ = nullptr;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  bool scratch_planned_ = false;
  int multiprocessors_ = 0;
  int shared_memory_per_block_ = 0;
};

CudaContext& cuda_context();

}  // namespace t6::ops::cuda
