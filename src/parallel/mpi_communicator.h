// The MPI implementation of Communicator: host buffers. Used by CPU runs and by the multi-rank tests
// (mpirun -np 4 --oversubscribe). BF16 buffers can be moved (broadcast, all_gather) but not reduced:
// the CPU backend reduces in fp32. Device buffers are staged through pinned host memory (copied
// down on the ops' stream after every op queued before, reduced on the host, copied back before
// any op after), so that ranks of the CUDA backend can share one GPU, which NCCL refuses: one wait
// for the device per staged collective, for the copy down (the copy back is not waited for); the
// staging buffer grows to the largest collective at its first use and is kept. Each collective is started non-blocking and waited for against
// parallel.timeout_s (collective_deadline.h), so a stuck peer ends the job, naming that peer.
#pragma once
#include "core/mpi_c.h"

#include <memory>

#include "core/device_memory.h"
#include "parallel/mpi_probe_channel.h"
#include "parallel/communicator.h"

namespace t6 {

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of comm (freed in the destructor) and makes its errors return as t6::Error.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm comm() const { return comm_; }

  void all_reduce(Tensor buffer, ReduceOp op) override;
  void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override;
  void all_gather(const Tensor& input, Tensor output) override;
  void reduce(Tensor buffer, ReduceOp op, int root) override;
  void broadcast(Tensor buffer, int root) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  // "all_reduce (sum) of 4 F64 over 2 ranks", for timeout messages.
  std::string describe(const char* collective, const Tensor& buffer, const char* op = nullptr) const;
  // Host views of `bytes` of pinned memory, growing the staging buffer when needed.
  char* staging(size_t bytes);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  ProbeChannel probes_;
  PinnedHostBuffer staging_;  // for device buffers; empty until the first one
};

// A duplicate of MPI_COMM_WORLD, so t6's messages never mix with other users of the world.
// MPI must be initialised (see parallel/mpi_runtime.h).
std::unique_ptr<MpiCommunicator> make_mpi_world_communicator();

}  // namespace t6
