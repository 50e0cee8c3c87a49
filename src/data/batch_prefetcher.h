// Reads this rank's slice of the next training batch in a thread of its own while the current step
// computes. A batch is a pure function of (seed, step) (token_loader.h), so prefetching changes no
// batch, their order, or what a resume reads. An error of the background read (a damaged or
// vanished shard, named in the message) is thrown on the calling thread by take() of that step.
// The loader is serial HDF5: while a read is in flight nothing else may use it or HDF5, so callers
// wait() before reading validation windows or writing a checkpoint.
#pragma once
#include <cstdint>
#include <exception>
#include <future>
#include <vector>

#include "data/token_loader.h"

namespace t6 {

class BatchPrefetcher {
 public:
  // Sequences [first_sequence, first_sequence + count) of each global batch, of seq_len tokens.
  // With `enabled` false every batch is read in take() (the same batches, no thread, and no memory
  // for a batch read ahead: count × seq_len inputs and as many targets when enabled).
  BatchPrefetcher(TokenLoader& loader, int64_t first_sequence, int64_t count, int64_t seq_len, bool enabled);
  ~BatchPrefetcher();  // waits for a read in flight
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Writes the batch of `step` (count × seq_len inputs and targets): the one read ahead when it is
  // that step's, else read now. Then starts reading the batch of `next_step` unless it is negative.
  void take(int64_t step, int32_t* inputs, int32_t* targets, int64_t next_step);
  // Returns once no read is in flight (its batch is kept for take()).
  void wait();

 private:
  TokenLoader& loader_;
  int64_t first_sequence_, count_;
  bool enabled_;
  std::future<void> in_flight_;
  // The batch read ahead, or the error of reading it; step -1: none.
  int64_t ahead_step_ = -1;
  std::vector<int32_t> ahead_inputs_, ahead_targets_;
  std::exception_ptr ahead_error_;
};

}  // namespace t6
