// Argument checks shared by the communicator implementations, so MPI and NCCL reject the same
// mistakes with the same messages. Each throws t6::Error naming the collective and the sizes.
#pragma once
#include "core/tensor.h"
#include "parallel/communicator.h"

namespace t6 {

// What a backend accepts: the device its buffers live on and its name for messages ("MPI", "NCCL").
struct CollectiveBackend {
  const char* name;
  Device device;
};

void check_all_reduce(const CollectiveBackend& backend, const Tensor& buffer, ReduceOp op);
// rank is the caller's rank in the group: the one chunk its buffers may share (in place).
void check_reduce_scatter(const CollectiveBackend& backend, const Tensor& input, const Tensor& output, ReduceOp op,
                          int group_size, int rank);
void check_all_gather(const CollectiveBackend& backend, const Tensor& input, const Tensor& output, int group_size,
                      int rank);
void check_reduce(const CollectiveBackend& backend, const Tensor& buffer, ReduceOp op, int root, int group_size);
void check_broadcast(const CollectiveBackend& backend, const Tensor& buffer, int root, int group_size);

// True when part is exactly chunk `index` of whole (same dtype, chunks of part.numel() elements):
// the in-place layout of reduce_scatter and all_gather.
bool is_chunk_of(const Tensor& part, const Tensor& whole, int index);

}  // namespace t6
