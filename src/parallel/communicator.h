// Communicator: the collectives the trainer needs over a group of ranks, behind one interface with
// two implementations: MPI (host buffers; CPU runs and multi-rank tests) and NCCL (device buffers;
// parallel/cuda/nccl_communicator.h). Every rank of the group must call each collective in the same
// order with matching sizes and dtypes, as with MPI.
#pragma once
#include <memory>
#include <string>
#include <utility>

#include "core/tensor.h"

namespace t6 {

// Avg is sum / size, for floating-point buffers only (an integer average would silently truncate).
enum class ReduceOp { Sum, Avg, Max };

const char* reduce_op_name(ReduceOp op);  // "sum", "avg", "max"

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place: every rank ends with the reduction of all ranks' buffers.
  virtual void all_reduce(Tensor buffer, ReduceOp op) = 0;
  // input holds size() * output.numel() elements; rank r gets the reduction of chunk r.
  // In place when output is chunk rank() of input; the other chunks of input are then left undefined.
  virtual void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) = 0;
  // output holds size() * input.numel() elements; chunk r comes from rank r.
  // In place when input is chunk rank() of output.
  virtual void all_gather(const Tensor& input, Tensor output) = 0;
  // In place: root ends with the reduction of all ranks' buffers; the other ranks' buffers are left
  // undefined (ZeRO-1 reduces each gradient segment to the rank that owns it).
  virtual void reduce(Tensor buffer, ReduceOp op, int root) = 0;
  // In place: every rank ends with root's buffer.
  virtual void broadcast(Tensor buffer, int root) = 0;
  virtual void barrier() = 0;

  // Overlap with the caller's later work: like all_reduce, reduce_scatter and reduce, ordered after
  // what the caller queued before, but the caller's later work may run before they finish, until
  // finish_started(). The buffers must not be touched in between. A communicator that finishes each
  // collective at once (MPI) needs nothing more than these defaults; NCCL runs them on its own
  // stream, which the compute stream waits for only at finish_started().
  virtual void start_all_reduce(Tensor buffer, ReduceOp op) { all_reduce(std::move(buffer), op); }
  virtual void start_reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) {
    reduce_scatter(input, std::move(output), op);
  }
  virtual void start_reduce(Tensor buffer, ReduceOp op, int root) { reduce(std::move(buffer), op, root); }
  virtual void finish_started() {}

  // For communicators whose collectives the host does not wait in (NCCL's run on the device): an
  // error their collectives met, in words (empty: none), and abort(), which ends the collectives in
  // flight so that a host blocked on them returns; the communicator is unusable after it. Both are
  // safe from another thread (CollectiveWatchdog's). Host communicators throw their errors from
  // the call itself and never leave a collective in flight: these defaults.
  virtual std::string asynchronous_error() { return {}; }
  virtual void abort() {}

  // Like MPI_Comm_split: ranks with the same color form a group, ordered by key (ties by rank).
  // Collective over this communicator. A negative color joins no group and gets nullptr.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// Root's string on every rank of `communicator` (collective).
std::string broadcast_string(Communicator& communicator, std::string text, int root = 0);

}  // namespace t6
