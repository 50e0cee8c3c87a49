// The NCCL implementation of Communicator: device buffers, one rank per GPU. Each communicator has
// a stream of its own and is ordered against the caller's compute stream by events, never by the
// host: a collective's stream waits for the work queued on the compute stream before the call, and
// the compute stream waits for the collective before its later work (at once, or at
// finish_started() for start_all_reduce / start_reduce_scatter / start_reduce, so that a gradient
// bucket's reduction overlaps the rest of the backward). Calls return before the device is done;
// host code that reads a result synchronises the compute stream. barrier() synchronises.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <memory>

#include "parallel/communicator.h"

namespace t6 {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over bootstrap (any host-buffer communicator, usually the MPI world): rank 0 creates
  // the NCCL unique id and broadcasts it. The NCCL ranks and size are bootstrap's. Selects
  // cuda_device on the calling thread. compute_stream is the stream whose work the collectives
  // follow and which sees their results (nullptr: the legacy default stream); it is not owned.
  NcclCommunicator(Communicator& bootstrap, int cuda_device, cudaStream_t compute_stream = nullptr);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  cudaStream_t stream() const { return stream_; }
  int cuda_device() const { return cuda_device_; }
  void synchronize();  // waits for every collective enqueued so far

  void all_reduce(Tensor buffer, ReduceOp op) override;
  void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override;
  void all_gather(const Tensor& input, Tensor output) override;
  void reduce(Tensor buffer, ReduceOp op, int root) override;
  void broadcast(Tensor buffer, int root) override;
  void barrier() override;
  void start_all_reduce(Tensor buffer, ReduceOp op) override;
  void start_reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override;
  void start_reduce(Tensor buffer, ReduceOp op, int root) override;
  void finish_started() override;
  std::string asynchronous_error() override;  // ncclCommGetAsyncError's, in words
  void abort() override;                      // ncclCommAbort; the destructor then leaves comm_ alone
  // By ncclCommSplit (NCCL >= 2.18); the new communicator has a stream of its own, on the same
  // device and compute stream.
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  NcclCommunicator(ncclComm_t comm, int cuda_device, cudaStream_t compute_stream);
  void create_stream_and_events();
  void follow_compute();   // this stream waits for the compute stream's work queued so far
  void join_compute();     // the compute stream waits for this stream's work queued so far

  ncclComm_t comm_ = nullptr;
  int cuda_device_ = 0;
  int rank_ = 0;
  int size_ = 1;
  cudaStream_t compute_stream_ = nullptr;  // not owned
  cudaStream_t stream_ = nullptr;          // owned: the collectives run here
  cudaEvent_t compute_ready_ = nullptr, collectives_done_ = nullptr;
  int* barrier_word_ = nullptr;  // one device int that barrier() all-reduces
  std::atomic<bool> aborted_{false};
};

}  // namespace t6
