// The NCCL implementation of Communicator: device buffers, one rank per GPU. Collectives are
// enqueued on stream() and return before they finish (stream-ordered, like kernels): work on the same
// stream sees their results; host code must call synchronize() first. barrier() synchronizes.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>

#include "parallel/communicator.h"

namespace t6 {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over bootstrap (any host-buffer communicator, usually the MPI world): rank 0 creates
  // the NCCL unique id and broadcasts it. The NCCL ranks and size are bootstrap's. Selects
  // cuda_device on the calling thread. With stream == nullptr the communicator creates its own
  // non-blocking stream; otherwise it uses the caller's (e.g. the compute stream) without owning it.
  NcclCommunicator(Communicator& bootstrap, int cuda_device, cudaStream_t stream = nullptr);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  cudaStream_t stream() const { return stream_.get(); }
  int cuda_device() const { return cuda_device_; }
  void synchronize();  // waits for every collective enqueued so far

  void all_reduce(Tensor buffer, ReduceOp op) override;
  void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override;
  void all_gather(const Tensor& input, Tensor output) override;
  void broadcast(Tensor buffer, int root) override;
  void barrier() override;
  // By ncclCommSplit (NCCL >= 2.18); the new communicator shares this one's stream and device.
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  NcclCommunicator(ncclComm_t comm, int cuda_device, std::shared_ptr<CUstream_st> stream);

  ncclComm_t comm_ = nullptr;
  int cuda_device_ = 0;
  int rank_ = 0;
  int size_ = 1;
  std::shared_ptr<CUstream_st> stream_;  // shared with split children; destroyed last if owned
  int* barrier_word_ = nullptr;          // one device int that barrier() all-reduces
};

}  // namespace t6
